/* Two photos of a request side by side, zoomed and moved together: the same scale and offset are
   applied to both, so the same spot of skin stays in view in each. Buttons, the keyboard (with the
   focus on the photos: + and - zoom, the arrow keys move, 0 resets), the mouse wheel and dragging
   all work. Without JavaScript the section stays hidden and each photo opens at full size. */
(function () {
  "use strict";

  var MIN = 1;
  var MAX = 8;
  var STEP = 1.25;
  var PAN = 40;

  function start() {
    var root = document.querySelector("[data-compare]");
    if (!root) { return; }
    var panes = root.querySelector("[data-compare-panes]");
    var images = Array.prototype.slice.call(root.querySelectorAll("[data-compare-image]"));
    var level = root.querySelector("[data-compare-level]");
    var view = { scale: 1, x: 0, y: 0 };

    function clamp() {
      var pane = images[0].parentNode;
      var limitX = (view.scale - 1) * pane.clientWidth / 2;
      var limitY = (view.scale - 1) * pane.clientHeight / 2;
      view.x = Math.max(-limitX, Math.min(limitX, view.x));
      view.y = Math.max(-limitY, Math.min(limitY, view.y));
    }

    function draw() {
      clamp();
      var transform = "translate(" + view.x + "px, " + view.y + "px) scale(" + view.scale + ")";
      images.forEach(function (image) { image.style.transform = transform; });
      if (level) { level.textContent = Math.round(view.scale * 100) + " %"; }
    }

    function zoom(factor) {
      var next = Math.max(MIN, Math.min(MAX, view.scale * factor));
      // Keep the middle of the view where it is while zooming.
      view.x = view.x * next / view.scale;
      view.y = view.y * next / view.scale;
      view.scale = next;
      draw();
    }

    function reset() { view = { scale: 1, x: 0, y: 0 }; draw(); }

    function move(dx, dy) { view.x += dx; view.y += dy; draw(); }

    root.querySelectorAll("[data-compare-select]").forEach(function (select) {
      var image = root.querySelector("[data-compare-image='" + select.getAttribute("data-compare-select") + "']");
      function show() {
        image.src = select.value;
        image.alt = select.options[select.selectedIndex].text;
      }
      select.addEventListener("change", show);
      show();
    });

    root.querySelectorAll("[data-compare-zoom]").forEach(function (button) {
      button.addEventListener("click", function () {
        var what = button.getAttribute("data-compare-zoom");
        if (what === "in") { zoom(STEP); } else if (what === "out") { zoom(1 / STEP); } else { reset(); }
      });
    });

    panes.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) { return; }
      var handled = true;
      switch (event.key) {
        case "+": case "=": zoom(STEP); break;
        case "-": case "_": zoom(1 / STEP); break;
        case "0": reset(); break;
        case "ArrowLeft": move(PAN, 0); break;
        case "ArrowRight": move(-PAN, 0); break;
        case "ArrowUp": move(0, PAN); break;
        case "ArrowDown": move(0, -PAN); break;
        default: handled = false;
      }
      if (handled) { event.preventDefault(); event.stopPropagation(); }
    });

    panes.addEventListener("wheel", function (event) {
      event.preventDefault();
      zoom(event.deltaY < 0 ? STEP : 1 / STEP);
    }, { passive: false });

    var drag = null;
    panes.addEventListener("pointerdown", function (event) {
      drag = { x: event.clientX, y: event.clientY };
      panes.setPointerCapture(event.pointerId);
    });
    panes.addEventListener("pointermove", function (event) {
      if (!drag) { return; }
      move(event.clientX - drag.x, event.clientY - drag.y);
      drag = { x: event.clientX, y: event.clientY };
    });
    function stop() { drag = null; }
    panes.addEventListener("pointerup", stop);
    panes.addEventListener("pointercancel", stop);

    root.hidden = false;
    draw();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
