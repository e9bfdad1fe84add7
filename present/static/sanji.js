// 三级 Sanji, both screens: what every page needs for keyboard users (issue 19). Without it the pages
// still work; a wide table then scrolls with the mouse or touch only.
(function () {
  "use strict";

  // A table wider than the screen scrolls inside its own box (.scroll-x). Only a box that really scrolls
  // takes a Tab stop, so the keyboard can scroll it; one that fits adds no stop.
  var mark = function () {
    Array.prototype.forEach.call(document.querySelectorAll(".scroll-x"), function (box) {
      if (box.scrollWidth > box.clientWidth + 1) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        if (!box.getAttribute("aria-label")) { box.setAttribute("aria-label", "表格（可左右滚动）"); }
      } else if (box.getAttribute("tabindex") === "0") {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
      }
    });
  };
  mark();
  window.addEventListener("resize", mark);
  // For pages that replace part of themselves (the overview's live block, hub/static/dashboard.js).
  window.sanjiMarkScrollBoxes = mark;
})();
