// Greets the visitor by the name in the address bar's ?name=, if any, and says how the page
// travelled: the Navigation Timing API reports the negotiated protocol (h2, http/1.1, h3).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const name = new URLSearchParams(window.location.search).get("name");
  if (name) {
    document.getElementById("greet").href = "/hello?name=" + encodeURIComponent(name);
  }
  const [navigation] = performance.getEntriesByType("navigation");
  if (navigation && navigation.nextHopProtocol) {
    const protocol = document.getElementById("protocol");
    protocol.textContent = "Served over " + navigation.nextHopProtocol + ".";
    protocol.hidden = false;
  }
});
