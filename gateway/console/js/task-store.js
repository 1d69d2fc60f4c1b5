// What the console knows about tasks: every event it received, per task, deduplicated,
// and the latest state the gateway listed for it.
//
// Events arrive over the WebSocket (live.js). After a reconnect the gateway replays
// from the last cursor the console saw (`since`), and may send some events twice: an
// event is kept once per task by its cursor, so the table never shows a task twice and
// a timeline never repeats a step.
//
// The recent tasks (GET /tasks, recent.js) arrive as one snapshot per task: its latest
// state with the stream cursor of the latest event in it. The list is read after the
// subscription is confirmed, so it can be older or newer than the events received
// around it; the store keeps both and shows whichever is newer by cursor, so an older
// state from the list never overwrites a newer one from the stream.

export const STATES = ["queued", "started", "progress", "retrying", "failed", "succeeded",
  "dead_lettered", "revoked"];
export const TERMINAL = new Set(["succeeded", "dead_lettered", "revoked"]);
// Bounded memory: past this many tasks, the oldest finished ones are forgotten.
export const MAX_TASKS = 5000;

/**
 * Cursors are opaque in the contract but increase; the gateway sends them as decimal
 * digit strings, compared here as numbers of any size (without BigInt parsing).
 */
export function compareCursors(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : 1;
}

/** A time in milliseconds (-Infinity when missing or unparsable). */
function millis(ts) {
  const ms = Date.parse(ts);
  return Number.isNaN(ms) ? -Infinity : ms;
}

/**
 * True when `event` (a WebSocket event frame) happened after the state `snapshot` (an item
 * of GET /tasks) describes. A snapshot without a cursor holds only the gateway's own
 * `queued` (not yet read back from the stream): every stream event is at least as new.
 * An event with the snapshot's own cursor is already in it.
 */
export function isEventAfter(event, snapshot) {
  if (!snapshot.cursor) return true;
  if (!event.cursor) return millis(event.ts) > millis(snapshot.updated_at);
  return compareCursors(event.cursor, snapshot.cursor) > 0;
}

/** True when snapshot `a` of a task is newer than snapshot `b` of the same task. */
export function isSnapshotAfter(a, b) {
  if (a.cursor && b.cursor) {
    const order = compareCursors(a.cursor, b.cursor);
    if (order !== 0) return order > 0;
  } else if (a.cursor || b.cursor) {
    return Boolean(a.cursor);  // a stream event since, against only the gateway's `queued`
  }
  // Same latest event: a change the gateway made itself since (a replay's `queued`) is
  // newer.
  return millis(a.updated_at) > millis(b.updated_at);
}

/** The events of `task` newer than its snapshot (all of them without a snapshot). */
function eventsAfterSnapshot(task) {
  const snapshot = task.snapshot;
  return snapshot ? task.events.filter((event) => isEventAfter(event, snapshot)) : task.events;
}

function eventKey(event) {
  // Events without a cursor (never from the stream) are told apart by state and time.
  return event.cursor ?? `${event.state}@${event.ts}`;
}

function byCursorThenTime(a, b) {
  if (a.cursor && b.cursor) return compareCursors(a.cursor, b.cursor);
  return String(a.ts).localeCompare(String(b.ts));
}

export class TaskStore {
  constructor() {
    this.listeners = new Set();
    this.reset();
  }

  reset() {
    this.tasks = new Map();  // task_id -> task; insertion order is first-seen order
    this.cursor = null;      // the highest event cursor received: where a reconnect resumes
    // A task's `order` says where its row goes (higher: further up). Tasks heard of live
    // count up from 0; tasks first known from a list count down below every other.
    this.sequence = 0;
    this.lowest = 0;
    this.epoch = (this.epoch ?? 0) + 1;  // a list asked for before a reset is dropped
    this.emit(null);
  }

  /** Subscribe to changes: listener(task) for one task, listener(null) after a reset. */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(task) {
    for (const listener of this.listeners) listener(task);
  }

  get(taskId) {
    return this.tasks.get(taskId);
  }

  names() {
    return [...new Set([...this.tasks.values()].map((t) => t.name))].sort();
  }

  add(id, name, order) {
    const task = {id, name, order, events: [], keys: new Set(), latest: null, snapshot: null};
    this.tasks.set(id, task);
    this.trim();
    return task;
  }

  /** One `event` frame from the gateway; returns false for a duplicate. */
  apply(frame) {
    if (!frame || typeof frame.task_id !== "string") return false;
    if (frame.cursor && compareCursors(frame.cursor, this.cursor) > 0) this.cursor = frame.cursor;
    const task = this.tasks.get(frame.task_id) || this.add(frame.task_id, frame.name,
      this.sequence++);
    const key = eventKey(frame);
    if (task.keys.has(key)) return false;
    task.keys.add(key);
    task.events.push(frame);
    task.events.sort(byCursorThenTime);
    task.latest = task.events[task.events.length - 1];
    if (!task.snapshot || isEventAfter(task.latest, task.snapshot)) {
      task.name = task.latest.name || task.name;
    }
    this.emit(task);
    return true;
  }

  /**
   * The items of GET /tasks (the latest state of each task, most recently updated first).
   * A task not known yet goes below every task known so far, in the list's order; one
   * known already gets the snapshot only if it is newer than the one it has (cursors).
   * Returns how many tasks changed.
   */
  applyList(items) {
    let changed = 0;
    for (const doc of items || []) {
      if (this.applySnapshot(doc)) changed += 1;
    }
    return changed;
  }

  applySnapshot(doc) {
    if (!doc || typeof doc.task_id !== "string" || typeof doc.state !== "string") return false;
    let task = this.tasks.get(doc.task_id);
    if (!task) {
      task = this.add(doc.task_id, doc.name, --this.lowest);
    } else if (task.snapshot && !isSnapshotAfter(doc, task.snapshot)) {
      return false;
    }
    task.snapshot = doc;
    // Shown only when no event received is newer; otherwise it just marks those events
    // as already known.
    if (task.latest && isEventAfter(task.latest, doc)) return false;
    task.name = doc.name || task.name;
    this.emit(task);
    return true;
  }

  trim() {
    if (this.tasks.size <= MAX_TASKS) return;
    // The finished tasks lowest in the table go first.
    const finished = [...this.tasks.values()]
      .filter((task) => TERMINAL.has(summarize(task).state))
      .sort((a, b) => a.order - b.order);
    for (const task of finished) {
      if (this.tasks.size <= MAX_TASKS) break;
      this.tasks.delete(task.id);
    }
  }
}

/**
 * The task's shown state: the newer of its snapshot (GET /tasks) and its latest event,
 * with what the latest of each kind said since.
 */
export function summarize(task) {
  const snapshot = task.snapshot;
  let state = snapshot?.state;
  let ts = snapshot?.updated_at;
  let progress = snapshot?.progress ?? null;
  let retries = snapshot?.retries ?? 0;
  for (const event of eventsAfterSnapshot(task)) {
    state = event.state;
    ts = event.ts;
    if (event.progress !== undefined) progress = event.progress;
    if (typeof event.retries === "number") retries = event.retries;
  }
  return {state, ts, progress, retries};
}
