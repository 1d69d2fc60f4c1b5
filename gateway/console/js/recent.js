// The recent tasks the gateway already knows (GET /tasks), loaded into the task store
// each time the live feed's subscription is confirmed: when the console opens and after
// every reconnect. Subscribing first and listing second leaves no gap: whatever changes
// after the subscription arrives as an event, whatever happened before is in the list.
// The two may cross (an event can be newer or older than the list); the store keeps the
// newer of the two for each task (task-store.js).

import {describeError} from "./api.js";

// As many as the API gives in one page (GET /tasks?limit=); the console keeps up to
// task-store.js MAX_TASKS.
export const RECENT_LIMIT = 1000;

export class RecentTasks {
  /**
   * @param api   api.js Api
   * @param store task-store.js TaskStore
   */
  constructor(api, store) {
    this.api = api;
    this.store = store;
    this.listeners = new Set();
    this.reset();
  }

  reset() {
    // "idle" (never asked), "loading", "loaded" or "failed" (with `error`, a sentence).
    this.status = "idle";
    this.error = "";
    this.loads = 0;  // lists applied, for the tasks page and the tests
    this.emit();
  }

  /** listener() after every change of status; returns the unsubscribe function. */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit() {
    for (const listener of this.listeners) listener();
  }

  /** Read the list and fold it into the store (a list that outlives a reset is dropped). */
  async load() {
    const epoch = this.store.epoch;
    this.status = "loading";
    this.emit();
    let doc;
    try {
      doc = await this.api.get("tasks", {limit: RECENT_LIMIT});
    } catch (err) {
      if (epoch !== this.store.epoch) return;
      if (err.status === 401) return;  // the console locks itself (api.js)
      this.status = "failed";
      this.error = describeError(err);
      this.emit();
      return;
    }
    if (epoch !== this.store.epoch) return;
    this.store.applyList(Array.isArray(doc?.items) ? doc.items : []);
    this.loads += 1;
    this.status = "loaded";
    this.error = "";
    this.emit();
  }
}
