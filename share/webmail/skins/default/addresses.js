// Address completion on the compose page's To, Cc and Bcc (the page works
// without it: the browser then completes the first address from the
// list). With it, every address of a list is completed: the suggestions
// are offered after what is typed up to the last separator, so choosing
// one keeps the addresses before it.
(function () {
  "use strict";
  var list = document.getElementById("kmp-addresses");
  if (!list) { return; }
  var all = [];
  for (var i = 0; i < list.options.length; i++) {
    var o = list.options[i];
    all.push({ v: o.value, l: (o.label || o.textContent || "").toLowerCase() });
  }
  // The end of the last complete item: after the last , or ; outside
  // quotes and angle brackets.
  function cut(text) {
    var quoted = false, angle = false, at = -1;
    for (var i = 0; i < text.length; i++) {
      var c = text.charAt(i);
      if (c === "\\" && quoted) { i++; continue; }
      if (c === "\"") { quoted = !quoted; }
      else if (c === "<" && !quoted) { angle = true; }
      else if (c === ">" && !quoted) { angle = false; }
      else if ((c === "," || c === ";") && !quoted && !angle) { at = i; }
    }
    return at;
  }
  function refill(input) {
    var text = input.value;
    var at = cut(text);
    var head = at >= 0 ? text.slice(0, at + 1) + " " : "";
    var word = (at >= 0 ? text.slice(at + 1) : text).replace(/^\s+/, "").toLowerCase();
    while (list.firstChild) { list.removeChild(list.firstChild); }
    var n = 0;
    for (var i = 0; i < all.length && n < 40; i++) {
      var v = all[i].v;
      if (word && v.toLowerCase().indexOf(word) < 0 && all[i].l.indexOf(word) < 0) { continue; }
      var o = document.createElement("option");
      o.value = head + v;
      list.appendChild(o);
      n++;
    }
  }
  var names = ["to", "cc", "bcc"];
  for (var k = 0; k < names.length; k++) {
    var input = document.getElementById(names[k]);
    if (!input) { continue; }
    input.setAttribute("list", "kmp-addresses");
    input.addEventListener("input", function () { refill(this); });
    input.addEventListener("focus", function () { refill(this); });
  }
})();
