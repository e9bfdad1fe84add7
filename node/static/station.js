// 三级 Sanji station UI: checks as staff type, the status bar's self-refresh, printing. The server
// checks everything again; this only tells staff sooner, while the citizen is still at the window.
(function () {
  "use strict";

  // --- GB 11643-1999 ID number check: a port of sync/identity.py check_id_number, same messages ---
  var WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  var CHECK = "10X98765432";

  function clean(raw) {
    // NFKC turns full-width digits typed with a Chinese input method into ASCII, as the server does.
    var v = raw.normalize ? raw.normalize("NFKC") : raw;
    return v.replace(/[\s\-]+/g, "");
  }

  function checkId(raw, today) {
    var v = clean(raw).toUpperCase();
    if (v.length !== 18) { return "身份证号码应为18位，当前为" + v.length + "位，请核对"; }
    if (!/^[0-9]{17}[0-9X]$/.test(v)) { return "身份证号码前17位应为数字，最后一位为数字或X"; }
    var y = parseInt(v.substr(6, 4), 10), m = parseInt(v.substr(10, 2), 10), d = parseInt(v.substr(12, 2), 10);
    var born = new Date(2000, 0, 1);
    born.setFullYear(y, m - 1, d);  // setFullYear: years below 100 stay themselves
    if (y < 1 || born.getFullYear() !== y || born.getMonth() !== m - 1 || born.getDate() !== d) {
      return "身份证号码中的出生日期不是有效日期，请核对第7至14位";
    }
    if (born > today) { return "身份证号码中的出生日期晚于今天，请核对第7至14位"; }
    if (y < 1900) { return "身份证号码中的出生日期早于1900年，请核对第7至14位"; }
    var sum = 0;
    for (var i = 0; i < 17; i++) { sum += parseInt(v.charAt(i), 10) * WEIGHTS[i]; }
    if (CHECK.charAt(sum % 11) !== v.charAt(17)) { return "身份证号码校验位不符，请核对最后一位"; }
    return "";
  }

  function checkPhone(raw) {
    var v = clean(raw);
    if (v.indexOf("+86") === 0 && v.length === 14) { v = v.substr(3); }
    else if (v.indexOf("0086") === 0 && v.length === 15) { v = v.substr(4); }
    if (!/^1[0-9]{10}$/.test(v)) { return "手机号码应为11位数字，以1开头"; }
    if ("3456789".indexOf(v.charAt(1)) < 0) { return "手机号码第二位应为3至9，请核对"; }
    return "";
  }

  // Exposed so the browser tests can hold this port to the server's rules on many generated numbers.
  window.Sanji = {checkId: checkId, checkPhone: checkPhone};

  var form = document.getElementById("accept-form");
  if (form) {
    var parts = (form.getAttribute("data-today") || "").split("-");
    var today = parts.length === 3 ? new Date(+parts[0], +parts[1] - 1, +parts[2]) : new Date();
    var checks = {id: function (v) { return checkId(v, today); }, phone: checkPhone};

    var validate = function (input, strict) {
      var err = document.getElementById(input.id + "-err");
      var value = input.value;
      var msg = "";
      if (!value.trim()) { msg = strict ? (input.id === "phone" ? "请填写手机号码" : "请填写身份证号码") : ""; }
      else if (strict || clean(value).length >= (input.id === "phone" ? 11 : 18)) {
        msg = checks[input.getAttribute("data-check")](value);
      }
      if (err) { err.textContent = msg; }
      input.classList.toggle("invalid", msg !== "");
      // Screen readers hear the state and, through aria-describedby, the message itself (3.3.1, 4.1.2).
      if (msg) { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); }
      return msg === "";
    };

    Array.prototype.forEach.call(form.querySelectorAll("[data-check]"), function (input) {
      input.addEventListener("input", function () { validate(input, false); });
      input.addEventListener("blur", function () { validate(input, true); });
    });

    // Material toggles: colour the chosen state, show the deferral date only for 容缺.
    form.addEventListener("change", function (ev) {
      var t = ev.target;
      if (!t || t.type !== "radio") { return; }
      var group = form.querySelectorAll('input[name="' + t.name + '"]');
      Array.prototype.forEach.call(group, function (r) {
        r.parentNode.className = r.checked ? "on-" + r.value : "";
      });
      var due = form.querySelector('[data-defer-for="' + t.name + '"]');
      if (due) { due.classList.toggle("hidden", t.value !== "deferred"); }
    });

    form.addEventListener("submit", function (ev) {
      var ok = true, first = null;
      Array.prototype.forEach.call(form.querySelectorAll("[data-check]"), function (input) {
        if (!validate(input, true)) { ok = false; first = first || input; }
      });
      var name = document.getElementById("name");
      var nameErr = document.getElementById("name-err");
      if (name && !name.value.trim()) {
        ok = false; first = first || name;
        if (nameErr) { nameErr.textContent = "请填写申请人姓名"; }
        name.classList.add("invalid");
        name.setAttribute("aria-invalid", "true");
      }
      if (!ok) { ev.preventDefault(); first.focus(); return; }
      var btn = document.getElementById("submit");
      if (btn) { btn.disabled = true; btn.textContent = "正在保存…"; }
    });
  }

  // --- item picker: filter as staff type ---
  var search = document.getElementById("item-search");
  if (search) {
    search.addEventListener("input", function () {
      var q = search.value.trim();
      var shown = 0;
      Array.prototype.forEach.call(document.querySelectorAll("[data-group]"), function (group) {
        var visible = 0;
        Array.prototype.forEach.call(group.querySelectorAll("li[data-search]"), function (li) {
          // data-search holds the name, code, category, common abbreviations (低保) and the pinyin
          // initials (zdshbz) that sync/catalogue_view.py derives; initials are typed in either case.
          var hit = !q || li.getAttribute("data-search").indexOf(q) >= 0 ||
            li.getAttribute("data-search").indexOf(q.toLowerCase()) >= 0;
          li.classList.toggle("hidden", !hit);
          if (hit) { visible++; }
        });
        group.hidden = visible === 0;
        shown += visible;
      });
      var none = document.getElementById("no-match");
      if (none) { none.hidden = shown > 0; }
    });
  }

  // --- printing the receipt ---
  Array.prototype.forEach.call(document.querySelectorAll("[data-print]"), function (btn) {
    btn.addEventListener("click", function () { window.print(); });
  });

  // --- the status bar refreshes itself ---
  var bar = document.getElementById("statusbar");
  if (bar && window.fetch) {
    var refresh = function () {
      fetch(bar.getAttribute("data-status"), {cache: "no-store", credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) {
          if (!s) { return; }
          var state = document.getElementById("hub-state");
          if (state && !s.usb_only) {
            var on = s.online === true, off = s.online === false;
            state.setAttribute("data-online", on ? "yes" : (off ? "no" : "unknown"));
            state.innerHTML = on ? '<span class="dot on"></span>已连接区局'
              : (off ? '<span class="dot off"></span>离线（连不上区局）' : '<span class="dot never"></span>检测中…');
          }
          var pending = document.getElementById("pending");
          if (pending) { pending.textContent = s.pending; }
          var photos = document.getElementById("photos-pending");
          if (photos) { photos.textContent = s.photos_pending; }
          var last = document.getElementById("last-sync");
          if (last) { last.textContent = s.last_sync_text; last.title = s.last_sync_at; }
        })
        .catch(function () { /* the UI itself went away (stopped); nothing to show */ });
    };
    // Soon after load (the page showed the last known answer), then every 10 seconds.
    window.setTimeout(refresh, 1500);
    window.setInterval(refresh, 10000);
  }

  var syncForm = document.getElementById("sync-form");
  if (syncForm) {
    syncForm.addEventListener("submit", function () {
      var btn = document.getElementById("sync-now");
      if (btn) { btn.disabled = true; btn.textContent = "同步中…"; }
    });
  }
})();
