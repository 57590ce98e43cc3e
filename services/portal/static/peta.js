// The desa page's map, when the regency has a tile server: the citizen drags or uses the
// arrow keys to move it, + and − to zoom, and taps (or presses Enter for the centre) to
// mark where the problem is; the mark fills the hidden lat/lon fields as the phone's
// position does. Tiles come from the portal (/peta/...), never from another origin.
// Without this script the page asks for the desa alone.
(function () {
  "use strict";
  var box = document.querySelector("[data-map]");
  if (!box) return;
  var view = box.querySelector("[data-map-view]");
  var marked = box.querySelector("[data-map-marked]");
  var lat = document.getElementById("lat");
  var lon = document.getElementById("lon");
  var template = box.getAttribute("data-tiles");
  var TILE = 256, MIN_ZOOM = 11, MAX_ZOOM = 18, STEP = 64;
  var centre = box.getAttribute("data-centre").split(",").map(Number);
  var zoom = 13;
  var mark = null;
  if (lat.value && lon.value) {
    mark = [Number(lat.value), Number(lon.value)];
    centre = mark.slice();
    zoom = 16;
  }

  // Web Mercator: a point as world pixels at the current zoom, and back.
  function toPixels(point) {
    var size = TILE * Math.pow(2, zoom);
    var sin = Math.sin((point[0] * Math.PI) / 180);
    return [((point[1] + 180) / 360) * size, (0.5 - Math.log((1 + sin) / (1 - sin)) / (4 * Math.PI)) * size];
  }
  function toPoint(px) {
    var size = TILE * Math.pow(2, zoom);
    var n = Math.PI - (2 * Math.PI * px[1]) / size;
    return [(180 / Math.PI) * Math.atan(0.5 * (Math.exp(n) - Math.exp(-n))), (px[0] / size) * 360 - 180];
  }

  function render() {
    var width = view.clientWidth, height = view.clientHeight;
    var middle = toPixels(centre);
    var left = middle[0] - width / 2, top = middle[1] - height / 2;
    var nodes = [];
    for (var ty = Math.floor(top / TILE); ty * TILE < top + height; ty++) {
      for (var tx = Math.floor(left / TILE); tx * TILE < left + width; tx++) {
        var img = document.createElement("img");
        img.alt = "";
        img.draggable = false;
        img.className = "map-tile";
        img.src = template.replace("{z}", zoom).replace("{x}", tx).replace("{y}", ty);
        img.style.left = Math.round(tx * TILE - left) + "px";
        img.style.top = Math.round(ty * TILE - top) + "px";
        img.onerror = function () { this.style.visibility = "hidden"; };
        nodes.push(img);
      }
    }
    if (mark) {
      var at = toPixels(mark);
      var pin = document.createElement("span");
      pin.className = "map-marker";
      pin.style.left = Math.round(at[0] - left) + "px";
      pin.style.top = Math.round(at[1] - top) + "px";
      nodes.push(pin);
    }
    var cross = document.createElement("span");
    cross.className = "map-centre";
    nodes.push(cross);
    view.replaceChildren.apply(view, nodes);
  }

  function move(dx, dy) {
    var px = toPixels(centre);
    centre = toPoint([px[0] + dx, px[1] + dy]);
    render();
  }
  function setMark(point) {
    mark = point;
    lat.value = point[0].toFixed(6);
    lon.value = point[1].toFixed(6);
    marked.hidden = false;
    render();
  }
  function zoomBy(delta) {
    zoom = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, zoom + delta));
    render();
  }

  var dragging = null;
  view.addEventListener("pointerdown", function (e) {
    dragging = { x: e.clientX, y: e.clientY, moved: 0 };
    view.setPointerCapture(e.pointerId);
  });
  view.addEventListener("pointermove", function (e) {
    if (!dragging) return;
    var dx = e.clientX - dragging.x, dy = e.clientY - dragging.y;
    dragging.moved += Math.abs(dx) + Math.abs(dy);
    dragging.x = e.clientX;
    dragging.y = e.clientY;
    move(-dx, -dy);
  });
  view.addEventListener("pointerup", function (e) {
    var tap = dragging && dragging.moved < 6;
    dragging = null;
    if (!tap) return;
    var box = view.getBoundingClientRect();
    var px = toPixels(centre);
    setMark(toPoint([px[0] + e.clientX - box.left - box.width / 2, px[1] + e.clientY - box.top - box.height / 2]));
  });
  view.addEventListener("keydown", function (e) {
    var keys = { ArrowLeft: [-STEP, 0], ArrowRight: [STEP, 0], ArrowUp: [0, -STEP], ArrowDown: [0, STEP] };
    if (keys[e.key]) move(keys[e.key][0], keys[e.key][1]);
    else if (e.key === "+" || e.key === "=") zoomBy(1);
    else if (e.key === "-") zoomBy(-1);
    else if (e.key === "Enter" || e.key === " ") setMark(centre.slice());
    else return;
    e.preventDefault();
  });
  Array.prototype.forEach.call(box.querySelectorAll("[data-map-zoom]"), function (button) {
    button.addEventListener("click", function () { zoomBy(Number(button.getAttribute("data-map-zoom"))); });
  });
  // The phone's position (lokasi.js) moves the map and its mark there.
  document.addEventListener("sinergi:lokasi", function () {
    centre = [Number(lat.value), Number(lon.value)];
    zoom = 16;
    setMark(centre.slice());
  });
  box.hidden = false;
  if (mark) marked.hidden = false;
  render();
})();
