// Live view: replaces the #live section with each snapshot the server
// sends (server-rendered, already escaped), without a reload.
(function () {
  "use strict";
  var target = document.getElementById("live");
  if (!target || !window.EventSource) { return; }
  var lang = document.documentElement.getAttribute("lang") || "";
  var source = new EventSource("/api/events?lang=" + encodeURIComponent(lang));
  source.addEventListener("snapshot", function (e) {
    try {
      var msg = JSON.parse(e.data);
      target.innerHTML = msg.html;
      target.setAttribute("data-seq", String(msg.seq));
    } catch (err) { /* a broken message: keep the last view */ }
  });
}());
