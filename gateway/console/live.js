// One realtime socket per tab. Views subscribe to an object's changes; the
// socket reconnects by itself and resumes each subscription after the last
// position it saw, so no change is missed across a reconnect.

import { token } from "./api.js";

let socket = null;
let ready = false;
let retry = 500;
const subscriptions = new Map(); // local id -> {object, filter, handler, serverId, after}
let nextLocal = 1;
const pending = []; // local ids whose subscribe awaits its reply (replies come in order)

function url() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/api/v1/realtime?access_token=${encodeURIComponent(token() || "")}`;
}

function send(message) {
  if (!socket || !ready) return false;
  socket.send(JSON.stringify(message));
  return true;
}

function subscribeMessage(local, sub) {
  const message = { type: "subscribe", object: sub.object };
  if (sub.filter) message.filter = sub.filter;
  if (sub.serverId) message.id = sub.serverId;
  if (sub.after) message.after = sub.after;
  return message;
}

function connect() {
  if (socket || !token() || subscriptions.size === 0) return;
  socket = new WebSocket(url());
  socket.addEventListener("open", () => {
    ready = true;
    retry = 500;
    pending.length = 0;
    for (const [local, sub] of subscriptions) if (send(subscribeMessage(local, sub))) pending.push(local);
    document.body.dataset.live = "on";
  });
  socket.addEventListener("message", (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (message.type === "subscribed" || (message.type === "error" && pending.length)) {
      const local = pending.shift();
      const sub = subscriptions.get(local);
      if (sub && message.type === "subscribed") sub.serverId = message.id;
      else if (sub) sub.serverId = null;
      if (!sub && message.type === "subscribed") send({ type: "unsubscribe", id: message.id });
      return;
    }
    if (!message.subscriptionId) return;
    for (const sub of subscriptions.values()) {
      if (sub.serverId === message.subscriptionId) {
        if (message.position) sub.after = Math.max(sub.after || 0, message.position);
        if (message.action) sub.handler(message);
      }
    }
  });
  socket.addEventListener("close", () => {
    socket = null;
    ready = false;
    document.body.dataset.live = "off";
    if (subscriptions.size > 0 && token()) setTimeout(connect, retry);
    retry = Math.min(retry * 2, 10000);
  });
}

/** Calls `handler(change)` for every change of `object` (matching `filter`); returns the unsubscribe. */
export function watch(object, filter, handler) {
  const local = nextLocal++;
  const sub = { object, filter, handler, serverId: null, after: 0 };
  subscriptions.set(local, sub);
  if (send(subscribeMessage(local, sub))) pending.push(local);
  else connect();
  return () => {
    subscriptions.delete(local);
    if (sub.serverId) send({ type: "unsubscribe", id: sub.serverId });
  };
}

/** Drops every subscription (a view changes, the user signs out). */
export function reset() {
  for (const sub of subscriptions.values()) if (sub.serverId) send({ type: "unsubscribe", id: sub.serverId });
  subscriptions.clear();
}

/** Closes the socket (sign-out). */
export function close() {
  reset();
  if (socket) socket.close();
}
