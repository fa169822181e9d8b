/* The patient's private page and its confirmation pages. Everything works without this script; with it:
 * - a form marked data-send-once cannot be sent twice by a double tap (the button says "Sending…");
 * - the reply form lists the photos chosen and warns at once about too many or too large ones
 *   (the server checks again and has the last word);
 * - a check-in reply's guided photo slots are checked and resized on the phone before the upload.
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

  function sizeSlotPhotos(form) {
    // A check-in reply's guided slots: each photo is checked and resized on the phone (static/js/photo-prep.js)
    // and put back in its input, so the plain form post sends the smaller copy.
    if (!window.PhotoPrep || !window.DataTransfer) { return; }
    var maxEdge = parseInt(form.dataset.maxEdge, 10) || 2048;
    form.querySelectorAll("input.slot-input").forEach(function (input) {
      input.addEventListener("change", function () {
        var file = input.files && input.files[0];
        var status = form.querySelector("#" + input.id + "-status");
        if (!file || input.dataset.prepared === file.name + file.size) { return; }
        if (status) { status.textContent = form.dataset.msgPreparing || ""; }
        window.PhotoPrep.prepare(file, { maxEdge: maxEdge }).then(function (prepared) {
          if (prepared.resized) {
            var swap = new DataTransfer();
            swap.items.add(prepared.file);
            input.dataset.prepared = prepared.file.name + prepared.file.size;
            input.files = swap.files;
          }
          if (status) {
            var words = [prepared.file.name + " (" + formatSize(prepared.file.size) + ")"];
            prepared.warnings.forEach(function (warning) {
              words.push(form.dataset["msg" + warning.charAt(0).toUpperCase() + warning.slice(1)] || "");
            });
            status.textContent = words.join(" ");
          }
        });
      });
    });
  }

  function start() {
    document.querySelectorAll("form[data-send-once]").forEach(sendOnce);
    var reply = document.getElementById("reply-form");
    if (reply) {
      describePhotos(reply);
      offerCamera(reply);
      sizeSlotPhotos(reply);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
