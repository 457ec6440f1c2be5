// The index page: greets the name in the address bar's ?name=, says how the page travelled
// (the Navigation Timing API reports the negotiated protocol: h2, http/1.1, h3), and shows the
// server's state as /live sends it over a WebSocket once a second, reconnecting when it ends.
"use strict";

const PROTOCOLS = { "http/1.1": "HTTP/1.1", h2: "HTTP/2", h3: "HTTP/3" };

function showProtocol() {
  const [navigation] = performance.getEntriesByType("navigation");
  const protocol = navigation && navigation.nextHopProtocol;
  if (protocol) {
    document.getElementById("live-page").textContent = PROTOCOLS[protocol] || protocol;
  }
}

function uptime(seconds) {
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const parts = hours ? [hours + " h", minutes + " min"] : minutes ? [minutes + " min"] : [];
  return parts.concat([(seconds % 60) + " s"]).join(" ");
}

function connect(delay) {
  const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + window.location.host + "/live");
  const state = document.getElementById("live-state");
  socket.addEventListener("message", (event) => {
    const live = JSON.parse(event.data);
    state.textContent = "connected, WebSocket over " + live.protocol;
    const time = document.getElementById("live-time");
    time.textContent = live.time ? live.time.slice(11, 19) + " UTC" : "not yet recorded";
    time.title = live.time || "";
    document.getElementById("live-requests").textContent = live.requests.toLocaleString("en");
    document.getElementById("live-uptime").textContent = uptime(live.uptime);
    delay = 1000;
  });
  socket.addEventListener("close", () => {
    state.textContent = "reconnecting…";
    setTimeout(() => connect(Math.min(delay * 2, 30000)), delay);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const name = new URLSearchParams(window.location.search).get("name");
  if (name) {
    document.getElementById("greet").href = "/hello?name=" + encodeURIComponent(name);
  }
  document.querySelector("#live dl").hidden = false;
  showProtocol();
  connect(1000);
});
