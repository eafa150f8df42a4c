// The compose page's one script (the page works without it): the size
// check on file choice, before anything is uploaded, and the signature
// choice swapped into the text at once.
(function () {
  "use strict";
  var form = document.getElementById("compose");
  if (!form) { return; }
  var limit = Number(form.getAttribute("data-limit")) || 0;
  var attached = Number(form.getAttribute("data-attached")) || 0;
  var files = document.getElementById("files");
  var warn = document.getElementById("too-large");
  function check() {
    var total = attached;
    for (var i = 0; i < files.files.length; i++) { total += files.files[i].size; }
    var over = limit > 0 && total > limit;
    warn.hidden = !over;
    warn.textContent = over ? form.getAttribute("data-too-large") : "";
    if (over) { files.value = ""; }
    return !over;
  }
  if (files && warn) {
    files.addEventListener("change", check);
    form.addEventListener("submit", function (e) {
      if (!check()) { e.preventDefault(); }
    });
  }
  var sig = document.getElementById("sig");
  var body = document.getElementById("body");
  var sigIn = form.querySelector("input[name=sig_in]");
  if (sig && body && sigIn) {
    sig.addEventListener("change", function () {
      var text = body.value.replace(/\r\n/g, "\n");
      var at = text.lastIndexOf("\n-- \n");
      if (at >= 0) { text = text.slice(0, at + 1); }
      else if (text.indexOf("-- \n") === 0) { text = ""; }
      var opt = sig.options[sig.selectedIndex];
      var s = opt ? opt.getAttribute("data-text") : null;
      if (s) {
        if (text === "") { text = "\n"; }
        if (text.charAt(text.length - 1) !== "\n") { text += "\n"; }
        text += "-- \n" + s.replace(/\s+$/, "") + "\n";
      }
      body.value = text;
      sigIn.value = sig.value;
    });
  }
})();
