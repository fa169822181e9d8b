/* The patient's private page and its confirmation pages. Everything works without this script; with it:
 * - a form marked data-send-once cannot be sent twice by a double tap (the button says "Sending…");
 * - the reply form lists the photos chosen and warns at once about too many or too large ones
 *   (the server checks again and has the last word).
 */
(function () {
  "use strict";

  function formatSize(bytes) {
    if (bytes < 1024 * 1024) { return Math.max(1, Math.round(bytes / 1024)) + " KB"; }
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  function sendOnce(form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.sending === "yes") { event.preventDefault(); return; }
      form.dataset.sending = "yes";
      var button = form.querySelector("button[type=submit]");
      if (button) {
        button.disabled = true;
        button.textContent = form.dataset.msgSending || button.textContent;
      }
    });
    // Coming back with the browser's back button shows the page from its cache: make it usable again.
    window.addEventListener("pageshow", function () {
      form.dataset.sending = "";
      var button = form.querySelector("button[type=submit]");
      if (button) { button.disabled = false; }
    });
  }

  function describePhotos(form) {
    var inputs = Array.prototype.slice.call(form.querySelectorAll('input[type=file][name="photos"]'));
    var status = form.querySelector("#photos-chosen");
    if (!inputs.length || !status) { return; }
    var maxPhotos = parseInt(form.dataset.maxPhotos, 10) || 6;
    var maxBytes = parseInt(form.dataset.maxBytes, 10) || 20 * 1024 * 1024;
    function describe() {
      var names = [];
      var problems = [];
      var kept = form.querySelectorAll('input[name="kept_photos"]:checked').length;
      inputs.forEach(function (input) {
        Array.prototype.forEach.call(input.files, function (file) {
          names.push(file.name + " (" + formatSize(file.size) + ")");
          if (file.size > maxBytes) { problems.push(form.dataset.msgTooBig + " " + file.name); }
        });
      });
      if (names.length + kept > maxPhotos) { problems.push(form.dataset.msgTooMany); }
      status.textContent = names.length ? form.dataset.msgChosen + " " + names.join(", ") + ". " + problems.join(" ") : "";
      status.classList.toggle("error", problems.length > 0);
    }
    inputs.forEach(function (input) { input.addEventListener("change", describe); });
  }

  function offerCamera(form) {
    // Only touch devices have a camera to offer here; elsewhere the extra file input is just noise.
    var choice = form.querySelector("[data-camera-choice]");
    if (choice && window.matchMedia && !window.matchMedia("(pointer: coarse)").matches) {
      choice.hidden = true;
    }
  }

  function start() {
    document.querySelectorAll("form[data-send-once]").forEach(sendOnce);
    var reply = document.getElementById("reply-form");
    if (reply) {
      describePhotos(reply);
      offerCamera(reply);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
