// The console's one WebSocket: every task event, into the task store.
//
// It subscribes to all events; after a dropped connection it reconnects (backing off
// up to MAX_DELAY_MS) and subscribes with `since` = the last cursor it received, so the
// gateway replays what happened meanwhile: no event is lost, and the store drops the
// ones it already had. The status badge says live, connecting or reconnecting.
// Each confirmed subscription calls `onSubscribed` (app.js: load the recent tasks, which
// must come after the subscription so that nothing falls between the two).

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5000;

export class LiveFeed {
  /**
   * @param api      api.js Api (the WebSocket URL, and a REST probe after a refusal)
   * @param store    task-store.js TaskStore
   * @param statusEl the badge showing the connection's state (data-live attribute)
   * @param onSubscribed called once the gateway confirmed each subscription
   */
  constructor(api, store, statusEl, onSubscribed = () => {}) {
    this.api = api;
    this.store = store;
    this.statusEl = statusEl;
    this.onSubscribed = onSubscribed;
    this.socket = null;
    this.timer = null;
    this.running = false;
    this.delay = FIRST_DELAY_MS;
    this.connections = 0;  // how many times a subscription was confirmed (tests, docs)
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.delay = FIRST_DELAY_MS;
    this.connect();
  }

  stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000, "console closed");
    }
    this.setStatus("offline");
  }

  setStatus(state, detail = "") {
    this.statusEl.dataset.live = state;
    this.statusEl.textContent = detail ? `${state}: ${detail}` : state;
    this.statusEl.title = state === "live"
      ? "receiving task events" : "not receiving task events right now";
  }

  connect() {
    const since = this.store.cursor;
    this.setStatus(this.connections ? "reconnecting" : "connecting");
    let socket;
    try {
      socket = new WebSocket(this.api.webSocketUrl());
    } catch (err) {
      this.scheduleReconnect(String(err));
      return;
    }
    this.socket = socket;
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      const frame = {op: "subscribe", all: true};
      if (since) frame.since = since;
      socket.send(JSON.stringify(frame));
    });
    socket.addEventListener("message", (message) => this.receive(message.data));
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return;  // replaced or stopped on purpose
      this.socket = null;
      if (!this.running) return;
      if (!opened) this.checkRefusal();
      this.scheduleReconnect();
    });
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame.type === "event") {
      this.store.apply(frame);
    } else if (frame.type === "subscribed" && frame.all) {
      this.connections += 1;
      this.delay = FIRST_DELAY_MS;
      this.setStatus("live");
      this.onSubscribed();
    } else if (frame.type === "error") {
      // e.g. replay_failed: the gateway closes the connection next; the reconnect
      // resumes from the last cursor received.
      this.setStatus("reconnecting", frame.error?.message || "error");
    }
  }

  scheduleReconnect(detail = "") {
    this.setStatus(this.connections ? "reconnecting" : "connecting", detail);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), this.delay);
    this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
  }

  /** A WebSocket refused before it opened says nothing of why: ask REST, whose 401
   * brings the token prompt back (api.js calls its onUnauthorized). */
  checkRefusal() {
    this.api.get("catalog").catch(() => {});
  }
}
