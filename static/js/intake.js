/* Patient intake: photo previews, an upload progress bar and small conveniences.
 *
 * The form works without this script (a normal multipart post). With it:
 * - chosen photos are previewed, can be removed, and can be added a few at a time;
 * - the form is sent with XMLHttpRequest so a progress bar can show the upload;
 *   the server's answer is the same as without JS (a redirect to the confirmation, or the
 *   form again with messages), so this file only decides how to show it; photos that passed are
 *   kept by the server when the form comes back with errors, and kept here when nothing was stored;
 * - the pregnancy question is hidden when it cannot apply;
 * - the private link on the confirmation page can be copied with one tap.
 */
(function () {
  "use strict";

  var HEIC = /\.(heic|heif)$/i;

  function formatSize(bytes) {
    if (bytes < 1024 * 1024) { return Math.max(1, Math.round(bytes / 1024)) + " KB"; }
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  function PhotoPicker(form) {
    this.form = form;
    this.input = form.querySelector("#photos");
    this.camera = form.querySelector("#photos-camera");
    this.list = form.querySelector("#photo-previews");
    this.status = form.querySelector("#photos-status");
    this.maxPhotos = parseInt(form.dataset.maxPhotos, 10) || 6;
    this.maxBytes = parseInt(form.dataset.maxBytes, 10) || 20 * 1024 * 1024;
    this.files = [];
    this.urls = [];
    var self = this;
    [this.input, this.camera].forEach(function (input) {
      if (input) {
        input.addEventListener("change", function () { self.add(input); });
      }
    });
  }

  PhotoPicker.prototype.keptCount = function () {
    return this.form.querySelectorAll('input[name="kept_photos"]:checked').length;
  };

  PhotoPicker.prototype.add = function (input) {
    var messages = [];
    var data = this.form.dataset;
    Array.prototype.forEach.call(input.files, function (file) {
      if (file.size > this.maxBytes) {
        messages.push(data.msgTooBig + " " + file.name + " (" + formatSize(file.size) + ")");
      } else if (this.files.length + this.keptCount() >= this.maxPhotos) {
        if (messages.indexOf(data.msgTooMany) < 0) { messages.push(data.msgTooMany); }
      } else {
        this.files.push(file);
      }
    }, this);
    // The files now live in this.files; clearing the input lets the same photo be picked again after removal.
    input.value = "";
    this.status.textContent = messages.join(" ");
    this.render();
  };

  PhotoPicker.prototype.remove = function (index) {
    this.files.splice(index, 1);
    this.status.textContent = "";
    this.render();
    this.input.focus();
  };

  PhotoPicker.prototype.render = function () {
    var self = this;
    this.urls.forEach(function (url) { URL.revokeObjectURL(url); });
    this.urls = [];
    this.list.textContent = "";
    this.files.forEach(function (file, index) {
      var item = document.createElement("li");
      item.className = "photo-preview";
      if (HEIC.test(file.name) || /hei[cf]/i.test(file.type)) {
        var placeholder = document.createElement("span");
        placeholder.className = "photo-placeholder";
        placeholder.textContent = self.form.dataset.msgNoPreview;
        item.appendChild(placeholder);
      } else {
        var url = URL.createObjectURL(file);
        self.urls.push(url);
        var img = document.createElement("img");
        img.src = url;
        img.alt = file.name;
        img.addEventListener("error", function () {
          var fallback = document.createElement("span");
          fallback.className = "photo-placeholder";
          fallback.textContent = self.form.dataset.msgNoPreview;
          img.replaceWith(fallback);
        });
        item.appendChild(img);
      }
      var name = document.createElement("span");
      name.className = "photo-name";
      name.textContent = file.name + " · " + formatSize(file.size);
      item.appendChild(name);
      var button = document.createElement("button");
      button.type = "button";
      button.className = "link-button";
      button.textContent = self.form.dataset.msgRemove;
      button.setAttribute("aria-label", self.form.dataset.msgRemove + " " + file.name);
      button.addEventListener("click", function () { self.remove(index); });
      item.appendChild(button);
      self.list.appendChild(item);
    });
  };

  PhotoPicker.prototype.formData = function () {
    var data = new FormData(this.form);
    data.delete("photos");
    this.files.forEach(function (file) { data.append("photos", file, file.name); });
    return data;
  };

  function showServerPage(html, carriedFiles) {
    // Put the server's answer (the form with messages, or an error page) in place of this page's content.
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.querySelector("main");
    var current = document.querySelector("main");
    if (!fresh || !current) { return false; }
    current.replaceWith(fresh);
    if (doc.title) { document.title = doc.title; }
    init();
    var form = fresh.querySelector("[data-intake-form]");
    if (form && form.picker && carriedFiles && carriedFiles.length) {
      // Nothing was stored (expired form, or a failure on our side): this page still holds the photos.
      form.picker.files = carriedFiles.slice();
      form.picker.render();
      var lost = fresh.querySelector("#photos-lost");
      if (lost) { lost.hidden = true; }
    }
    var focusTarget = fresh.querySelector("#error-summary") || fresh.querySelector(".intake-notice") ||
      fresh.querySelector("h1");
    if (focusTarget) {
      if (!focusTarget.hasAttribute("tabindex")) { focusTarget.setAttribute("tabindex", "-1"); }
      focusTarget.focus();
      focusTarget.scrollIntoView({ block: "start" });
    }
    return true;
  }

  function sendWithProgress(form, picker) {
    var button = form.querySelector("#send-button");
    var box = form.querySelector("#upload-progress");
    var bar = form.querySelector("#upload-progress-bar");
    var text = form.querySelector("#upload-progress-text");
    var data = form.dataset;
    var xhr = new XMLHttpRequest();

    function reset(message) {
      button.disabled = false;
      box.hidden = true;
      if (message) { picker.status.textContent = message; }
    }

    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", function (event) {
      if (!event.lengthComputable) { return; }
      var percent = Math.round((event.loaded / event.total) * 100);
      bar.value = percent;
      text.textContent = percent < 100 ? data.msgUploading.replace("{percent}", percent) : data.msgProcessing;
    });
    xhr.addEventListener("load", function () {
      var landed = new URL(xhr.responseURL || form.action, window.location.href);
      var sent = new URL(form.action, window.location.href);
      if (xhr.status === 200 && landed.pathname !== sent.pathname) {
        window.location.assign(landed.href);  // stored: the confirmation page
      } else if (!showServerPage(xhr.responseText, xhr.status === 422 ? [] : picker.files)) {
        reset(data.msgNetwork);
      }
    });
    xhr.addEventListener("error", function () { reset(data.msgNetwork); });
    xhr.addEventListener("abort", function () { reset(data.msgNetwork); });

    button.disabled = true;  // one click, one request (the server also refuses a second copy)
    box.hidden = false;
    bar.value = 0;
    text.textContent = data.msgUploading.replace("{percent}", "0");
    xhr.send(picker.formData());
  }

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

  function initCamera(form) {
    // Only touch devices have a camera to offer here; elsewhere the extra file input is just noise.
    var choice = form.querySelector("[data-camera-choice]");
    if (choice && window.matchMedia && !window.matchMedia("(pointer: coarse)").matches) {
      choice.hidden = true;
    }
  }

  function initForm(form) {
    if (form.dataset.ready) { return; }
    form.dataset.ready = "1";
    var picker = new PhotoPicker(form);
    form.picker = picker;
    initPregnancyQuestion(form);
    initCamera(form);
    if (!window.FormData || !window.DOMParser || !("upload" in new XMLHttpRequest())) {
      return;  // an old browser: the plain form post still works
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      sendWithProgress(form, picker);
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
