// Progressive enhancement of the dashboard: the page works without this script. With
// it, the browser listens to the live feed (Server-Sent Events), shows each event at
// once and re-renders the sections marked data-live from the server (debounced), so
// indicators, the OPD table and the kecamatan grid follow the events.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!window.EventSource || !window.fetch || !window.DOMParser || !script) return;
  var streamUrl = script.getAttribute("data-stream");
  var liveText = script.getAttribute("data-live-text") || "live";
  var offlineText = script.getAttribute("data-offline-text") || "offline";
  var pending = null;
  var refreshing = false;
  var again = false;
  var lastSeq = 0;

  function status(ok) {
    var el = document.getElementById("live-status");
    if (!el) return;
    el.hidden = false;
    el.textContent = ok ? "● " + liveText : offlineText;
    el.className = ok ? "live-status" : "live-status off";
  }

  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(window.location.pathname + window.location.search, { headers: { "X-Requested-With": "sinergi-live" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (el) {
          var fresh = el.id && doc.getElementById(el.id);
          if (fresh) el.innerHTML = fresh.innerHTML;
        });
        status(true);
      })
      .catch(function () { status(false); })
      .then(function () {
        refreshing = false;
        if (again) { again = false; schedule(); }
      });
  }

  function schedule() {
    if (pending) return;
    pending = setTimeout(function () { pending = null; refresh(); }, 800);
  }

  function show(ev) {
    var list = document.getElementById("feed-list");
    if (!list) return;
    var empty = list.querySelector(".empty");
    if (empty) empty.remove();
    var li = document.createElement("li");
    li.className = "feed-item fresh d-" + ev.domain;
    li.setAttribute("data-seq", ev.seq);
    var parts = [
      ["time", new Date(ev.at).toLocaleTimeString()],
      ["span.dom", ev.domain_label || ev.domain],
      ["span.what", ev.label || ev.action],
    ];
    if (ev.category_label) parts.push(["span.cat", ev.category_label]);
    if (ev.title) parts.push(["span.title", "\u201c" + ev.title + "\u201d"]);
    else if (ev.title_note) parts.push(["span.note", ev.title_note]);
    if (ev.code) parts.push(["code", ev.code]);
    parts.forEach(function (p) {
      var spec = p[0].split(".");
      var node = document.createElement(spec[0]);
      if (spec[1]) node.className = spec[1];
      node.textContent = p[1];  // text only: never HTML from the stream
      li.appendChild(node);
    });
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 20) list.removeChild(list.lastChild);
  }

  var source = new EventSource(streamUrl);
  source.addEventListener("open", function () { status(true); });
  source.addEventListener("error", function () { status(false); });
  source.addEventListener("sinergi", function (message) {
    var ev;
    try { ev = JSON.parse(message.data); } catch (e) { return; }
    if (ev.seq && ev.seq <= lastSeq) return;
    lastSeq = ev.seq || lastSeq;
    show(ev);
    schedule();
  });
})();
