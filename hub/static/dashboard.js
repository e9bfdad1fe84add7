// 三级 Sanji operator dashboard: the few things plain HTML cannot do. Nothing here is needed to use the
// pages; without it they still work, only without self-refresh and confirmations.
(function () {
  "use strict";

  // The overview refreshes its live part in place every N seconds, keeping the scroll position. Operators
  // can pause it (WCAG 2.2.2), and it never replaces the block while focus is inside it, where a refresh
  // would drop the focused link to <body> (2.4.3): that round is skipped, the next one tries again.
  var live = document.querySelector("[data-refresh]");
  if (live) {
    var every = parseInt(live.getAttribute("data-interval") || "20", 10) * 1000;
    var stamp = document.getElementById("refreshed");
    var toggle = document.getElementById("refresh-toggle");
    var state = document.getElementById("refresh-state");
    var paused = false;
    if (toggle) {
      toggle.hidden = false;
      toggle.addEventListener("click", function () {
        paused = !paused;
        toggle.setAttribute("aria-pressed", paused ? "true" : "false");
        toggle.textContent = paused ? "继续自动刷新" : "暂停自动刷新";
        if (state) { state.textContent = paused ? "自动刷新已暂停" : "每 " + every / 1000 + " 秒自动刷新"; }
      });
    }
    var tick = function () {
      if (paused || live.contains(document.activeElement)) { return; }
      fetch(live.getAttribute("data-refresh"), {credentials: "same-origin", cache: "no-store"})
        .then(function (r) {
          if (r.status === 401) { window.location.reload(); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          // Checked again on arrival: focus may have moved into the block while the answer travelled.
          if (html === null || paused || live.contains(document.activeElement)) { return; }
          live.innerHTML = html;
          if (window.sanjiMarkScrollBoxes) { window.sanjiMarkScrollBoxes(); }  // the new tables' scroll boxes
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

  // Filters do not apply on "change": one arrow key in a closed select would jump to another list and
  // drop focus to the page (WCAG 3.2.2, issue 19 item 1). The 查询 button applies them.
})();
