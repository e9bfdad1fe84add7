// 三级 Sanji operator dashboard: the few things plain HTML cannot do. Nothing here is needed to use the
// pages; without it they still work, only without self-refresh and confirmations.
(function () {
  "use strict";

  // The overview refreshes its live part in place every N seconds, keeping the scroll position.
  var live = document.querySelector("[data-refresh]");
  if (live) {
    var every = parseInt(live.getAttribute("data-interval") || "20", 10) * 1000;
    var stamp = document.getElementById("refreshed");
    var tick = function () {
      fetch(live.getAttribute("data-refresh"), {credentials: "same-origin", cache: "no-store"})
        .then(function (r) {
          if (r.status === 401) { window.location.reload(); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (html === null) { return; }
          live.innerHTML = html;
          if (stamp) { stamp.textContent = new Date().toLocaleTimeString("zh-CN", {hour12: false}); }
        })
        .catch(function () { if (stamp) { stamp.textContent = "刷新失败，稍后重试"; } });
    };
    window.setInterval(tick, every);
  }

  // Destructive or far-reaching actions ask once more: the form's data-confirm, or that of the button
  // that submitted it (one form holds several workflow moves, and only some of them are final).
  document.addEventListener("submit", function (ev) {
    var button = ev.submitter;
    var msg = (button && button.getAttribute("data-confirm")) ||
      (ev.target.getAttribute && ev.target.getAttribute("data-confirm"));
    if (msg && !window.confirm(msg)) { ev.preventDefault(); }
  });

  // Filters apply as soon as a select changes.
  Array.prototype.forEach.call(document.querySelectorAll("form.filters select"), function (sel) {
    sel.addEventListener("change", function () { sel.form.submit(); });
  });
})();
