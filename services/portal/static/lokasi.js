// Adds the phone's position to a report when the citizen asks for it: fills the hidden
// lat/lon fields of the desa page. Without this script (or without permission) the
// report goes with its desa alone.
(function () {
  "use strict";
  var box = document.querySelector("[data-location]");
  if (!box || !("geolocation" in navigator)) return;
  var lat = document.getElementById("lat");
  var lon = document.getElementById("lon");
  var added = box.querySelector("[data-location-added]");
  var denied = box.querySelector("[data-location-denied]");
  box.hidden = false;
  if (lat.value && lon.value) added.hidden = false;
  box.querySelector("[data-location-button]").addEventListener("click", function () {
    navigator.geolocation.getCurrentPosition(
      function (position) {
        lat.value = position.coords.latitude.toFixed(6);
        lon.value = position.coords.longitude.toFixed(6);
        added.hidden = false;
        denied.hidden = true;
        document.dispatchEvent(new CustomEvent("sinergi:lokasi"));  // the map follows (peta.js)
      },
      function () {
        denied.hidden = false;
      },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 }
    );
  });
})();
