// otpgate authentication center: small enhancements. Every page works without this file.
"use strict";

(function () {
  // Copy buttons: shown only when the clipboard can be used.
  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    if (!navigator.clipboard) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 1500);
      }, function () {
        button.textContent = "Select and copy";
      });
    });
  });

  // Countdowns: the server wrote the time left; tick it down each second.
  var countdowns = document.querySelectorAll(".countdown[data-expires]");
  if (countdowns.length) {
    var tick = function () {
      var now = Date.now() / 1000;
      countdowns.forEach(function (el) {
        var left = Math.max(0, Math.floor(parseFloat(el.getAttribute("data-expires")) - now));
        var minutes = Math.floor(left / 60);
        var seconds = left % 60;
        var text = minutes ? minutes + " min " + String(seconds).padStart(2, "0") + " s" : seconds + " s";
        var span = el.querySelector(".left");
        if (span) span.textContent = text;
        el.classList.toggle("late", left < 60);
      });
    };
    setInterval(tick, 1000);
  }
})();
