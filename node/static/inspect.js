// 三级 Sanji field device: the report form's helpers. Everything works without this file (manual GPS,
// a scanned signature); the server checks everything again through the same code as `node report`.
(function () {
  "use strict";
  var form = document.getElementById("report-form");
  if (!form) { return; }

  // --- checklist answers follow the result until the inspector changes a line by hand ---
  var setLines = function (result) {
    if (!result) { return; }
    var answer = result === "pass" ? "yes" : "no";
    Array.prototype.forEach.call(form.querySelectorAll("#checklist tr[data-line]"), function (row) {
      if (row.getAttribute("data-touched") === "1") { return; }
      var radio = row.querySelector('input[value="' + answer + '"]');
      if (radio) { radio.checked = true; }
    });
  };
  form.addEventListener("change", function (ev) {
    var t = ev.target;
    if (!t || t.type !== "radio") { return; }
    if (t.name === "result") { setLines(t.value); }
    else if (/^check\d+$/.test(t.name)) { t.closest("tr").setAttribute("data-touched", "1"); }
  });

  // --- this device's position: satellite GPS needs no network ---
  var here = document.getElementById("gps-here");
  var status = document.getElementById("gps-status");
  if (here && navigator.geolocation) {
    here.hidden = false;
    here.addEventListener("click", function () {
      status.textContent = "正在定位…（室外更快）";
      here.disabled = true;
      navigator.geolocation.getCurrentPosition(function (pos) {
        document.getElementById("lat").value = pos.coords.latitude.toFixed(6);
        document.getElementById("lon").value = pos.coords.longitude.toFixed(6);
        document.getElementById("acc").value = Math.round(pos.coords.accuracy);
        status.textContent = "已填入本机定位，精度约 " + Math.round(pos.coords.accuracy) + " 米";
        here.disabled = false;
      }, function (err) {
        status.textContent = "未能定位（" + (err.code === 1 ? "未允许使用位置" : "暂时收不到信号") + "），请手工填写";
        here.disabled = false;
      }, {enableHighAccuracy: true, timeout: 30000, maximumAge: 60000});
    });
  }

  // --- the signature pad: pointer events (finger, pen or mouse), kept as a PNG in a hidden field ---
  var pad = document.getElementById("sig-pad");
  var canvas = document.getElementById("sig-canvas");
  var drawn = false;
  if (pad && canvas && canvas.getContext) {
    pad.hidden = false;
    var scan = document.getElementById("sig-file");
    if (scan) { scan.hidden = true; }
    var ctx = canvas.getContext("2d");
    var blank = function () {
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.strokeStyle = "#111";
      ctx.lineWidth = 3;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      drawn = false;
      canvas.setAttribute("data-drawn", "0");
    };
    blank();
    var at = function (ev) {
      var box = canvas.getBoundingClientRect();
      return [(ev.clientX - box.left) * canvas.width / box.width, (ev.clientY - box.top) * canvas.height / box.height];
    };
    var down = false;
    canvas.addEventListener("pointerdown", function (ev) {
      down = true;
      if (canvas.setPointerCapture) { canvas.setPointerCapture(ev.pointerId); }
      var p = at(ev);
      ctx.beginPath();
      ctx.moveTo(p[0], p[1]);
      ev.preventDefault();
    });
    canvas.addEventListener("pointermove", function (ev) {
      if (!down) { return; }
      var p = at(ev);
      ctx.lineTo(p[0], p[1]);
      ctx.stroke();
      drawn = true;
      canvas.setAttribute("data-drawn", "1");
      ev.preventDefault();
    });
    var up = function () { down = false; };
    canvas.addEventListener("pointerup", up);
    canvas.addEventListener("pointercancel", up);
    document.getElementById("sig-clear").addEventListener("click", blank);
  }

  // --- before sending: sizes the server would refuse, told now while every field is still filled ---
  var photosErr = document.getElementById("photos-err");
  form.addEventListener("submit", function (ev) {
    var maxBlob = +form.getAttribute("data-max-blob"), maxTotal = +form.getAttribute("data-max-total");
    var maxPhotos = +form.getAttribute("data-max-photos");
    var files = Array.prototype.slice.call(document.getElementById("photos").files || []);
    var total = 0, msg = "";
    files.forEach(function (f) {
      total += f.size;
      if (f.size > maxBlob && !msg) { msg = "照片「" + f.name + "」超过 " + Math.round(maxBlob / 1048576) + " MiB，请降低分辨率后重新拍摄"; }
    });
    if (!msg && files.length > maxPhotos) { msg = "照片最多 " + maxPhotos + " 张，当前选择了 " + files.length + " 张"; }
    if (!msg && total > maxTotal) { msg = "照片合计超过 " + Math.round(maxTotal / 1048576) + " MiB，请减少照片"; }
    if (msg) { ev.preventDefault(); photosErr.textContent = msg; return; }
    photosErr.textContent = "";
    // A 合格 result with lines answered 否: ask once more (the server asks too, and flags the report).
    var confirmNo = document.getElementById("confirm-no");
    var result = form.querySelector('input[name="result"]:checked');
    var no = form.querySelectorAll('#checklist input[value="no"]:checked').length;
    if (result && result.value === "pass" && no && confirmNo && confirmNo.type === "hidden") {
      if (!window.confirm("结论为合格，但有 " + no + " 项核查为否。确认保存？报告将标注，区局审核时可见。")) {
        ev.preventDefault();
        return;
      }
      confirmNo.value = "1";
    }
    if (drawn) { document.getElementById("signature_png").value = canvas.toDataURL("image/png"); }
    var btn = document.getElementById("submit-report");
    if (btn) { btn.disabled = true; btn.textContent = "正在保存…"; }
  });
})();
