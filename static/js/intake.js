/* Patient intake: red-flag advice before sending, guided photo slots checked and sized on the phone,
 * an upload progress bar in real bytes, and small conveniences.
 *
 * The form works without this script (a normal multipart post; the server shows the red-flag advice
 * page and cleans every photo). With it:
 * - ticking a red-flag question says at once what to do; pressing "Send" with one ticked shows the
 *   advice (call 112 / see a doctor today) before anything is uploaded, and the patient may still send;
 * - each photo slot previews its photo, warns when it looks too dark, blurred or small, and sends a
 *   copy resized to PHOTO_MAX_EDGE (static/js/photo-prep.js), so a 12 MP photo goes up as a fraction;
 * - the form is sent with XMLHttpRequest so a progress bar can show the bytes sent; the server's
 *   answer is the same as without JS (a redirect to the confirmation, or the form again with
 *   messages), so this file only decides how to show it; photos that passed are kept by the server
 *   when the form comes back with errors, and kept here when nothing was stored;
 * - the pregnancy question is hidden when it cannot apply;
 * - the private link on the confirmation page can be copied with one tap.
 */
(function () {
  "use strict";

  function formatSize(bytes) {
    if (bytes < 1024 * 1024) { return Math.max(1, Math.round(bytes / 1024)) + " KB"; }
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  function fill(pattern, values) {
    return pattern.replace(/\{(\w+)\}/g, function (whole, name) { return name in values ? values[name] : whole; });
  }

  // --- Guided photo slots ---------------------------------------------------------------------------

  function SlotPhotos(form) {
    this.form = form;
    this.data = form.dataset;
    this.maxPhotos = parseInt(form.dataset.maxPhotos, 10) || 6;
    this.maxBytes = parseInt(form.dataset.maxBytes, 10) || 20 * 1024 * 1024;
    this.maxEdge = parseInt(form.dataset.maxEdge, 10) || 2048;
    this.chosen = {};   // slot name -> the prepared photo (PhotoPrep result)
    this.pending = {};  // slot name -> a preparation still running
    this.urls = {};
    var self = this;
    form.querySelectorAll("input.slot-input").forEach(function (input) {
      input.addEventListener("change", function () { self.choose(input); });
    });
  }

  SlotPhotos.prototype.slot = function (name) {
    return this.form.querySelector('[data-photo-slot="' + name + '"]');
  };

  SlotPhotos.prototype.count = function (except) {
    var names = Object.keys(this.chosen).concat(Object.keys(this.pending));
    var unique = names.filter(function (name, index) { return names.indexOf(name) === index && name !== except; });
    var kept = this.form.querySelectorAll('input[name="kept_photos"]:checked').length;
    return unique.length + kept;
  };

  SlotPhotos.prototype.status = function (name, text, isError) {
    var status = this.form.querySelector("#" + name + "-status");
    if (status) {
      status.textContent = text;
      status.classList.toggle("error", Boolean(isError));
    }
  };

  SlotPhotos.prototype.choose = function (input) {
    var self = this;
    var name = input.name;
    var file = input.files && input.files[0];
    if (!file) { return; }
    if (file.size > this.maxBytes) {
      input.value = "";
      this.status(name, this.data.msgTooBig + " " + file.name + " (" + formatSize(file.size) + ")", true);
      return;
    }
    var kept = this.slot(name).querySelector("[data-kept-in-slot]");
    if (this.count(name) - (kept && kept.checked ? 1 : 0) >= this.maxPhotos) {
      input.value = "";
      this.status(name, this.data.msgTooMany, true);
      return;
    }
    if (kept) { kept.checked = false; }  // the new photo takes the kept one's place
    this.status(name, this.data.msgPreparing, false);
    var job = window.PhotoPrep ? window.PhotoPrep.prepare(file, { maxEdge: this.maxEdge }) :
      Promise.resolve({ file: file, original: file, warnings: [], resized: false, undecodable: true });
    this.pending[name] = job;
    job.then(function (prepared) {
      if (self.pending[name] !== job) { return; }  // replaced or removed meanwhile
      delete self.pending[name];
      self.chosen[name] = prepared;
      self.render(name);
    });
  };

  SlotPhotos.prototype.describe = function (prepared) {
    var data = this.data;
    var words = [prepared.file.name + " · " + formatSize(prepared.file.size)];
    if (prepared.resized) {
      words.push(fill(data.msgResized, { before: formatSize(prepared.original.size), after: formatSize(prepared.file.size) }));
    } else if (prepared.undecodable) {
      words.push(data.msgAsItIs);
    }
    return words.join(" · ");
  };

  SlotPhotos.prototype.render = function (name) {
    var self = this;
    var prepared = this.chosen[name];
    var box = this.slot(name).querySelector("[data-slot-preview]");
    if (this.urls[name]) { URL.revokeObjectURL(this.urls[name]); delete this.urls[name]; }
    box.textContent = "";
    if (!prepared) {
      box.hidden = true;
      this.status(name, "", false);
      return;
    }
    var item = document.createElement("div");
    item.className = "photo-preview";
    if (prepared.undecodable) {
      var placeholder = document.createElement("span");
      placeholder.className = "photo-placeholder";
      placeholder.textContent = this.data.msgNoPreview;
      item.appendChild(placeholder);
    } else {
      var url = URL.createObjectURL(prepared.file);
      this.urls[name] = url;
      var img = document.createElement("img");
      img.src = url;
      img.alt = prepared.original.name;
      item.appendChild(img);
    }
    var caption = document.createElement("span");
    caption.className = "photo-name";
    caption.textContent = this.describe(prepared);
    item.appendChild(caption);
    if (prepared.warnings.length) {
      var list = document.createElement("ul");
      list.className = "photo-warnings";
      prepared.warnings.forEach(function (warning) {
        var entry = document.createElement("li");
        entry.textContent = self.data["msg" + warning.charAt(0).toUpperCase() + warning.slice(1)];
        list.appendChild(entry);
      });
      item.appendChild(list);
    }
    var button = document.createElement("button");
    button.type = "button";
    button.className = "link-button";
    button.textContent = this.data.msgRemove;
    button.setAttribute("aria-label", this.data.msgRemove + " " + prepared.original.name);
    button.addEventListener("click", function () { self.remove(name); });
    item.appendChild(button);
    box.appendChild(item);
    box.hidden = false;
    var warned = prepared.warnings.length ? " " + this.data.msgWarned : "";
    this.status(name, this.data.msgReady + warned, false);
  };

  SlotPhotos.prototype.remove = function (name) {
    delete this.chosen[name];
    delete this.pending[name];
    var input = this.form.querySelector('input[name="' + name + '"]');
    if (input) { input.value = ""; }
    this.render(name);
    if (input) { input.focus(); }
  };

  SlotPhotos.prototype.ready = function () {
    var self = this;
    var jobs = Object.keys(this.pending).map(function (name) { return self.pending[name]; });
    return Promise.all(jobs);
  };

  SlotPhotos.prototype.fillIn = function (data) {
    // The prepared copies replace what the file inputs hold (the originals, several MB each).
    var self = this;
    this.form.querySelectorAll("input.slot-input").forEach(function (input) {
      var prepared = self.chosen[input.name];
      if (prepared) {
        data.set(input.name, prepared.file, prepared.file.name);
      } else {
        data.delete(input.name);
      }
    });
    return data;
  };

  SlotPhotos.prototype.restore = function (chosen) {
    var self = this;
    Object.keys(chosen).forEach(function (name) {
      if (self.slot(name)) {
        self.chosen[name] = chosen[name];
        self.render(name);
      }
    });
  };

  // --- Red-flag questions ---------------------------------------------------------------------------

  function redFlagLevel(form) {
    var level = null;
    form.querySelectorAll('input[name="red_flags"]:checked').forEach(function (box) {
      if (box.dataset.level === "emergency") { level = "emergency"; }
      else if (box.dataset.level && !level) { level = box.dataset.level; }
    });
    return level;
  }

  function initRedFlags(form) {
    var group = form.querySelector("[data-red-flags]");
    if (!group) { return; }
    var none = group.querySelector('input[value="none"]');
    var live = group.querySelector("[data-triage-live]");
    group.querySelectorAll('input[name="red_flags"]').forEach(function (box) {
      box.addEventListener("change", function () {
        if (box === none && box.checked) {
          group.querySelectorAll('input[name="red_flags"]').forEach(function (other) {
            if (other !== none) { other.checked = false; }
          });
        } else if (box !== none && box.checked && none) {
          none.checked = false;
        }
        var level = redFlagLevel(form);
        var panel = level && form.querySelector('[data-triage-panel="' + level + '"] h2');
        if (live) { live.textContent = panel ? panel.textContent : ""; }
      });
    });
    form.querySelectorAll("[data-triage-panel]").forEach(function (panel) {
      panel.querySelector("[data-triage-back]").addEventListener("click", function () {
        panel.hidden = true;
        var first = group.querySelector('input[name="red_flags"]');
        if (first) { first.focus(); }
      });
      panel.querySelector("[data-triage-send]").addEventListener("click", function () {
        form.querySelector('input[name="triage_seen"]').value = panel.dataset.triagePanel;
        panel.hidden = true;
        sendWithProgress(form, form.slots, null);
      });
    });
  }

  function adviceNeeded(form, submitter) {
    // The advice this form's answers call for, unless the patient has seen it (or a more severe one).
    var seen = form.querySelector('input[name="triage_seen"]');
    if (submitter && submitter.name === "triage_confirm") { seen.value = submitter.value; }
    var level = redFlagLevel(form);
    if (!level || seen.value === "emergency" || seen.value === level) { return null; }
    return level;
  }

  function showAdvice(form, level) {
    form.querySelectorAll("[data-triage-panel]").forEach(function (panel) {
      panel.hidden = panel.dataset.triagePanel !== level;
      if (!panel.hidden) {
        panel.focus();
        panel.scrollIntoView({ block: "start" });
      }
    });
  }

  // --- Sending ----------------------------------------------------------------------------------------

  function showServerPage(html, carried) {
    // Put the server's answer (the form with messages, or an error page) in place of this page's content.
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.querySelector("main");
    var current = document.querySelector("main");
    if (!fresh || !current) { return false; }
    current.replaceWith(fresh);
    if (doc.title) { document.title = doc.title; }
    init();
    var form = fresh.querySelector("[data-intake-form]");
    if (form && form.slots && carried && Object.keys(carried).length) {
      // Nothing was stored (expired form, or a failure on our side): this page still holds the photos.
      form.slots.restore(carried);
      var lost = fresh.querySelector("#photos-lost");
      if (lost) { lost.hidden = true; }
    }
    var focusTarget = fresh.querySelector("#triage-advice h1") || fresh.querySelector("#error-summary") ||
      fresh.querySelector(".intake-notice") || fresh.querySelector("h1");
    if (focusTarget) {
      if (!focusTarget.hasAttribute("tabindex")) { focusTarget.setAttribute("tabindex", "-1"); }
      focusTarget.focus();
      focusTarget.scrollIntoView({ block: "start" });
    }
    return true;
  }

  function sendWithProgress(form, slots, submitter) {
    var button = form.querySelector("#send-button");
    var box = form.querySelector("#upload-progress");
    var bar = form.querySelector("#upload-progress-bar");
    var text = form.querySelector("#upload-progress-text");
    var data = form.dataset;
    var status = form.querySelector("#photos-status");

    function reset(message) {
      button.disabled = false;
      box.hidden = true;
      if (message && status) { status.textContent = message; }
    }

    button.disabled = true;  // one click, one request (the server also refuses a second copy)
    box.hidden = false;
    bar.value = 0;
    text.textContent = data.msgPreparingAll;
    slots.ready().then(function () {
      var body = slots.fillIn(new FormData(form));
      if (submitter && submitter.name) { body.set(submitter.name, submitter.value); }
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.upload.addEventListener("progress", function (event) {
        if (!event.lengthComputable) { return; }
        bar.value = Math.round((event.loaded / event.total) * 100);
        text.textContent = event.loaded < event.total ?
          fill(data.msgUploading, { sent: formatSize(event.loaded), total: formatSize(event.total) }) : data.msgProcessing;
      });
      xhr.addEventListener("load", function () {
        var landed = new URL(xhr.responseURL || form.action, window.location.href);
        var sent = new URL(form.action, window.location.href);
        if (xhr.status === 200 && landed.pathname !== sent.pathname) {
          window.location.assign(landed.href);  // stored: the confirmation page
        } else if (!showServerPage(xhr.responseText, xhr.status === 422 || xhr.status === 200 ? {} : slots.chosen)) {
          reset(data.msgNetwork);
        }
      });
      xhr.addEventListener("error", function () { reset(data.msgNetwork); });
      xhr.addEventListener("abort", function () { reset(data.msgNetwork); });
      text.textContent = fill(data.msgUploading, { sent: "0 KB", total: "…" });
      xhr.send(body);
    });
  }

  // --- The rest of the form -------------------------------------------------------------------------

  function initPregnancyQuestion(form) {
    var pregnancy = form.querySelector('input[name="history"][value="pregnant"]');
    if (!pregnancy) { return; }
    var option = pregnancy.closest("label");
    function update() {
      var male = form.querySelector('input[name="sex"][value="male"]:checked');
      option.hidden = Boolean(male);
      if (male) { pregnancy.checked = false; }
    }
    form.querySelectorAll('input[name="sex"]').forEach(function (radio) {
      radio.addEventListener("change", update);
    });
    update();
  }

  function initForm(form) {
    if (form.dataset.ready) { return; }
    form.dataset.ready = "1";
    var slots = new SlotPhotos(form);
    form.slots = slots;
    initPregnancyQuestion(form);
    initRedFlags(form);
    if (!window.FormData || !window.DOMParser || !window.Promise || !("upload" in new XMLHttpRequest())) {
      return;  // an old browser: the plain form post still works
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var level = adviceNeeded(form, event.submitter);
      if (level) {
        showAdvice(form, level);
        return;
      }
      sendWithProgress(form, slots, event.submitter);
    });
  }

  function initCopyLink() {
    document.querySelectorAll("[data-copy-link]").forEach(function (button) {
      var link = document.querySelector(button.dataset.copyLink);
      var status = button.parentNode.querySelector("[data-copy-status]");
      if (!link || !navigator.clipboard) { return; }
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(link.href).then(function () {
          if (status) { status.textContent = button.dataset.copied; }
        });
      });
    });
  }

  function init() {
    document.querySelectorAll("[data-intake-form]").forEach(initForm);
    initCopyLink();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
