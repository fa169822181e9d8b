/* Live countdown badges: every element with data-countdown="<UTC ISO time>" shows the time left
   and switches between on_track, at_risk and overdue without a page reload. The words come from
   data attributes written by the server in the reader's language (data-label-* on the badge,
   data-format-* and data-sla-warning-hours on the nearest [data-countdown-root]). */
(function () {
  "use strict";

  var STATES = ["on_track", "at_risk", "overdue"];
  var TICK_MS = 30 * 1000;

  function fill(pattern, values) {
    return pattern.replace(/%\((\w+)\)s/g, function (whole, name) {
      return name in values ? String(values[name]) : whole;
    });
  }

  function settingsFor(badge) {
    var root = badge.closest("[data-countdown-root]") || document.body;
    var data = root.dataset;
    return {
      // A badge's own warning (an urgent request's, shorter) wins over the page's.
      warningHours: parseFloat(badge.dataset.warningHours || data.slaWarningHours || badge.dataset.slaWarningHours || "4"),
      hoursMinutes: data.formatHoursMinutes || "%(hours)s h %(minutes)s min",
      minutes: data.formatMinutes || "%(minutes)s min",
      left: data.formatLeft || "%(time)s left",
      late: data.formatLate || "%(time)s late"
    };
  }

  function duration(ms, settings) {
    var totalMinutes = Math.floor(Math.abs(ms) / 60000);
    var hours = Math.floor(totalMinutes / 60);
    var minutes = totalMinutes % 60;
    if (hours > 0) {
      return fill(settings.hoursMinutes, { hours: hours, minutes: minutes });
    }
    return fill(settings.minutes, { minutes: minutes });
  }

  function stateFor(ms, settings) {
    if (ms <= 0) { return "overdue"; }
    if (ms <= settings.warningHours * 3600 * 1000) { return "at_risk"; }
    return "on_track";
  }

  function labelFor(badge, state) {
    var key = "label" + state.split("_").map(function (part) {
      return part.charAt(0).toUpperCase() + part.slice(1);
    }).join("");
    return badge.dataset[key] || state.replace("_", " ");
  }

  function update(badge, now) {
    var due = Date.parse(badge.dataset.countdown);
    if (isNaN(due)) { return; }
    var settings = settingsFor(badge);
    var ms = due - now;
    var state = stateFor(ms, settings);
    var words = fill(ms > 0 ? settings.left : settings.late, { time: duration(ms, settings) });
    STATES.forEach(function (name) { badge.classList.toggle("badge-" + name, name === state); });
    badge.dataset.state = state;
    var target = badge.querySelector("time") || badge;
    target.textContent = labelFor(badge, state) + " · " + words;
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (badge) { update(badge, now); });
  }

  function start() {
    tick();
    window.setInterval(tick, TICK_MS);
    // A laptop waking from sleep should not show stale times until the next tick.
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") { tick(); }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
  window.SkinClinicCountdown = { tick: tick };
}());
