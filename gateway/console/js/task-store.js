// What the console knows about tasks: every event it received, per task, deduplicated.
//
// Events arrive over the WebSocket (live.js). After a reconnect the gateway replays
// from the last cursor the console saw (`since`), and may send some events twice: an
// event is kept once per task by its cursor, so the table never shows a task twice and
// a timeline never repeats a step.

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
    this.cursor = null;      // the highest cursor received: where a reconnect resumes
    this.sequence = 0;
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

  /** One `event` frame from the gateway; returns false for a duplicate. */
  apply(frame) {
    if (!frame || typeof frame.task_id !== "string") return false;
    if (frame.cursor && compareCursors(frame.cursor, this.cursor) > 0) this.cursor = frame.cursor;
    let task = this.tasks.get(frame.task_id);
    if (!task) {
      task = {
        id: frame.task_id, name: frame.name, order: this.sequence++,
        events: [], keys: new Set(), latest: null,
      };
      this.tasks.set(task.id, task);
      this.trim();
    }
    const key = eventKey(frame);
    if (task.keys.has(key)) return false;
    task.keys.add(key);
    task.events.push(frame);
    task.events.sort(byCursorThenTime);
    task.latest = task.events[task.events.length - 1];
    task.name = task.latest.name || task.name;
    this.emit(task);
    return true;
  }

  trim() {
    if (this.tasks.size <= MAX_TASKS) return;
    for (const [id, task] of this.tasks) {
      if (this.tasks.size <= MAX_TASKS) break;
      if (task.latest && TERMINAL.has(task.latest.state)) this.tasks.delete(id);
    }
  }
}

/** The task's shown state: its latest event's, with what the latest of each kind said. */
export function summarize(task) {
  const latest = task.latest || {};
  let progress = null;
  let retries = 0;
  for (const event of task.events) {
    if (event.progress !== undefined) progress = event.progress;
    if (typeof event.retries === "number") retries = event.retries;
  }
  return {state: latest.state, ts: latest.ts, progress, retries};
}
