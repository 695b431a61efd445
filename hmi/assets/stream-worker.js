// One server-sent-events connection for every tab of the HMI in this
// browser: a shared worker holds /api/v1/stream?alarms=true and passes each
// event to every tab connected to it. A browser opens at most six
// connections to one server over HTTP/1.1, and each open stream holds one,
// so a stream per tab would stall the seventh tab. The connection closes
// when the last tab leaves.
"use strict";

const ports = new Set();
let source = null;

function send(type, data) {
  for (const port of ports) port.postMessage({type, data});
}

function open() {
  if (source) return;
  source = new EventSource("/api/v1/stream?alarms=true");
  for (const type of ["snapshot", "alarm", "lagged"]) source.addEventListener(type, (e) => send(type, e.data));
  source.onopen = () => send("open", "");
  source.onerror = () => send("error", "");
}

function leave(port) {
  ports.delete(port);
  if (!ports.size && source) { source.close(); source = null; }
}

self.onconnect = (e) => {
  const port = e.ports[0];
  port.onmessage = (m) => {
    if (m.data === "connect") { ports.add(port); open(); }
    else if (m.data === "restart") { if (source) { source.close(); source = null; } ports.add(port); open(); }
    else if (m.data === "close") leave(port);
  };
  port.start();
};
