/* Saved replies on the request page: choosing one fills the four answer fields in place (they stay
   editable). Without JavaScript the same buttons reload the page with ?reply=<id>, and the server
   fills the form. Text already written is only replaced after the person agrees. */
(function () {
  "use strict";

  var FIELDS = ["assessment", "treatment", "prescription_note", "follow_up"];

  function start() {
    var picker = document.querySelector("[data-saved-replies]");
    var form = document.querySelector("[data-answer-form]");
    if (!picker || !form) { return; }
    var status = picker.querySelector("[data-saved-reply-status]");
    var hidden = form.querySelector("input[name=saved_reply_id]");
    var lastFilled = null;

    function current() {
      var values = {};
      FIELDS.forEach(function (name) {
        var field = form.elements[name];
        values[name] = field ? field.value : "";
      });
      return values;
    }

    function written(values) {
      return FIELDS.some(function (name) {
        var text = values[name].trim();
        return text !== "" && (!lastFilled || text !== (lastFilled[name] || "").trim());
      });
    }

    picker.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-reply-fields]");
      if (!button) { return; }
      event.preventDefault();
      var values;
      try { values = JSON.parse(button.getAttribute("data-reply-fields")); } catch (error) { return; }
      if (written(current()) && !window.confirm(form.getAttribute("data-confirm-replace"))) { return; }
      FIELDS.forEach(function (name) {
        var field = form.elements[name];
        if (field) {
          field.value = values[name] || "";
          field.dispatchEvent(new Event("input", { bubbles: true }));
        }
      });
      lastFilled = values;
      if (hidden) { hidden.value = button.getAttribute("data-reply-id"); }
      picker.querySelectorAll("button[data-reply-fields]").forEach(function (other) {
        other.setAttribute("aria-pressed", other === button ? "true" : "false");
      });
      var title = button.firstChild ? button.firstChild.textContent.trim() : "";
      if (status) { status.textContent = form.getAttribute("data-filled-message").replace("{title}", title); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
