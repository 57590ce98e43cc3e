// The waiting-room display, live: the portal's stream sends the board's state whenever
// the number called or the next numbers change. Without this script (or EventSource)
// the page reloads itself (its <noscript> refresh).
(function () {
  "use strict";
  var main = document.querySelector("[data-stream]");
  if (!main || !window.EventSource) return;
  var called = document.getElementById("dipanggil");
  var upcoming = document.getElementById("berikutnya");
  var waiting = document.getElementById("menunggu");
  var none = called.getAttribute("data-none");
  var source = new EventSource(main.getAttribute("data-stream"));
  source.addEventListener("antrean", function (event) {
    var state = JSON.parse(event.data);
    called.textContent = state.called || none;
    while (upcoming.firstChild) upcoming.removeChild(upcoming.firstChild);
    state.upcoming.forEach(function (code) {
      var item = document.createElement("li");
      item.textContent = code;
      upcoming.appendChild(item);
    });
    waiting.textContent = waiting.getAttribute("data-template").replace("{count}", String(state.waiting));
  });
})();
