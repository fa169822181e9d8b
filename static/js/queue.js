/* The request page: click a photo to see it at full size in a dialog (Escape or Close to leave).
   Without JavaScript the photo link simply opens the image itself. */
(function () {
  "use strict";

  function start() {
    var dialog = document.getElementById("photo-dialog");
    if (!dialog || typeof dialog.showModal !== "function") { return; }
    var image = dialog.querySelector("img");
    var opener = null;

    document.querySelectorAll("a[data-zoom]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        if (event.ctrlKey || event.metaKey || event.shiftKey) { return; }  // let "open in new tab" work
        event.preventDefault();
        opener = link;
        var thumb = link.querySelector("img");
        image.src = link.href;
        image.alt = thumb ? thumb.alt : "";
        dialog.showModal();
      });
    });

    // A click on the big photo itself (not a drag to scroll) closes it again.
    image.addEventListener("click", function () { dialog.close(); });
    dialog.addEventListener("close", function () {
      image.removeAttribute("src");
      if (opener) { opener.focus(); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
