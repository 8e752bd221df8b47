// Small enhancements for every page. Nothing here sends data anywhere or stores it:
// "today" and "out of date" are worked out from the visitor's own clock.
(function () {
  "use strict";

  var DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

  function showTodaysHours() {
    var today = DAYS[new Date().getDay()];
    document.querySelectorAll("table.hours").forEach(function (table) {
      var row = table.querySelector('tr[data-day="' + today + '"]');
      var note = table.parentNode.querySelector("[data-hours-today]");
      if (!row || !note) return;
      row.classList.add("is-today");
      var hours = row.querySelector("td").textContent;
      note.textContent = hours === "Closed" ? "Closed today." : "Open today: " + hours + ".";
      note.hidden = false;
    });
  }

  function flagStaleProfiles() {
    document.querySelectorAll("[data-last-verified]").forEach(function (element) {
      var verified = new Date(element.getAttribute("data-last-verified") + "T00:00:00");
      var limit = parseInt(element.getAttribute("data-stale-after-days"), 10);
      if (isNaN(verified.getTime()) || isNaN(limit)) return;
      var ageDays = (Date.now() - verified.getTime()) / 86400000;
      var note = element.querySelector(".stale-note");
      if (note && ageDays > limit) note.hidden = false;
    });
  }

  // A print button only where script runs (it is hidden in the page as written) and the browser can print.
  function offerPrinting() {
    if (typeof window.print !== "function") return;
    document.querySelectorAll("button[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
      button.hidden = false;
    });
  }

  showTodaysHours();
  flagStaleProfiles();
  offerPrinting();
})();
