/* Keyboard shortcuts on the queue and the request page:
     j / k  next / previous request      c  claim      a  go to the answer      ?  list the shortcuts
   They never fire while the person types in a field, nor with Ctrl, Alt or Cmd held, so typing,
   the browser's own shortcuts and screen readers' keys are left alone. Everything they do is also
   a link or a button on the page, for the mouse and for screen readers. */
(function () {
  "use strict";

  function typingIn(element) {
    if (!element || element === document.body) { return false; }
    if (element.isContentEditable) { return true; }
    var tag = element.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") { return true; }
    if (tag !== "INPUT") { return false; }
    var kind = (element.type || "text").toLowerCase();
    return ["button", "submit", "reset", "checkbox", "radio", "image", "file", "range", "color"].indexOf(kind) === -1;
  }

  function openDialog(dialog) {
    if (dialog && typeof dialog.showModal === "function" && !dialog.open) { dialog.showModal(); }
  }

  function anyDialogOpen() {
    return document.querySelector("dialog[open]") !== null;
  }

  /* --- The queue: rows chosen with j/k, the chosen one (or the first unclaimed) claimed with c --- */

  function queueShortcuts() {
    var rows = Array.prototype.slice.call(document.querySelectorAll("[data-queue-row]"));
    var current = -1;

    function rowOf(element) {
      for (var i = 0; i < rows.length; i += 1) { if (rows[i].contains(element)) { return i; } }
      return -1;
    }

    function select(index) {
      if (!rows.length) { return; }
      index = Math.max(0, Math.min(rows.length - 1, index));
      if (current >= 0 && rows[current]) { rows[current].classList.remove("is-current"); }
      current = index;
      rows[current].classList.add("is-current");
      var link = rows[current].querySelector("a.reference");
      if (link) { link.focus(); }
    }

    document.addEventListener("focusin", function (event) {
      var index = rowOf(event.target);
      if (index >= 0 && index !== current) {
        if (current >= 0 && rows[current]) { rows[current].classList.remove("is-current"); }
        current = index;
        rows[current].classList.add("is-current");
      }
    });

    function claim() {
      var form = document.querySelector("[data-shortcut-claim-form]");
      if (!form) { return false; }
      var row = current >= 0 ? rows[current] : null;
      if (!row || !row.hasAttribute("data-claim-url")) {
        row = rows.filter(function (r) { return r.hasAttribute("data-claim-url"); })[0];
      }
      if (!row) { return false; }
      form.action = row.getAttribute("data-claim-url");
      form.submit();
      return true;
    }

    return {
      j: function () { select(current + 1); return rows.length > 0; },
      k: function () { select(current < 0 ? 0 : current - 1); return rows.length > 0; },
      c: claim,
      a: function () { return false; }
    };
  }

  /* --- The request page: j/k follow the next/previous links, c claims, a goes to the answer --- */

  function requestShortcuts() {
    function follow(selector) {
      var link = document.querySelector(selector);
      if (!link) { return false; }
      window.location.assign(link.href);
      return true;
    }
    return {
      j: function () { return follow("[data-shortcut-next]"); },
      k: function () { return follow("[data-shortcut-prev]"); },
      c: function () {
        var form = document.querySelector("[data-shortcut-claim]");
        if (!form) { return false; }
        var button = form.querySelector("button[type=submit]");
        if (button) { button.disabled = true; }
        form.submit();
        return true;
      },
      a: function () {
        var field = document.getElementById("assessment");
        if (!field) { return false; }
        field.scrollIntoView({ block: "center" });
        field.focus();
        return true;
      }
    };
  }

  function start() {
    var dialog = document.getElementById("shortcuts-dialog");
    if (!dialog) { return; }
    var opener = null;
    var actions = document.querySelector("[data-queue-row]") || document.querySelector("[data-shortcut-claim-form]")
      ? queueShortcuts() : requestShortcuts();

    document.querySelectorAll("[data-shortcuts-help]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { opener = button; openDialog(dialog); });
    });
    dialog.addEventListener("close", function () { if (opener) { opener.focus(); opener = null; } });

    document.addEventListener("keydown", function (event) {
      if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) { return; }
      if (typingIn(event.target) || anyDialogOpen()) { return; }
      var key = event.key;
      if (key === "?") {
        opener = document.activeElement;
        openDialog(dialog);
        event.preventDefault();
        return;
      }
      if (event.shiftKey || !Object.prototype.hasOwnProperty.call(actions, key)) { return; }
      if (actions[key]()) { event.preventDefault(); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
