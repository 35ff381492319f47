// Keeps the page's live part (#live with data-refresh="seconds") current
// while a run goes on: it fetches this same URL and swaps the part in.
// Once the page says nothing is live any more, it stops.
(function () {
  "use strict";
  function schedule() {
    var el = document.getElementById("live");
    if (!el || !el.dataset.refresh) return;
    setTimeout(refresh, Math.max(1, Number(el.dataset.refresh)) * 1000);
  }
  function refresh() {
    fetch(location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        var el = document.getElementById("live");
        if (next && el) el.replaceWith(document.importNode(next, true));
      })
      .catch(function () { /* a missed refresh is retried at the next */ })
      .finally(schedule);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", schedule);
  else schedule();
})();
