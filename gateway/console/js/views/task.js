// #/tasks/<id> — one task: its status (GET /tasks/{id}), its event timeline with
// timestamps (the events this console received), a progress bar while it reports
// {done, total}, its result or error, retries, the dead-letter reason, and a revoke
// button while it has not ended.

import {describeError} from "../api.js";
import {banner, h, replaceChildren} from "../dom.js";
import {formatDuration, formatJson, formatTime} from "../format.js";
import {TERMINAL} from "../task-store.js";
import {pageHeading, progressBar, REASONS, stateBadge} from "./common.js";

// At most one status request in flight; events in a burst share the next one.
const REFRESH_PAUSE_MS = 200;

export function render(main, ctx, {taskId}) {
  let alive = true;
  let status = null;       // the last GET /tasks/{id} document
  let statusError = null;  // or why there is none
  let revokeNote = null;   // what the revoke button last did
  let refreshing = false;
  let again = false;

  const summary = h("section", {class: "card", id: "task-summary"});
  const timeline = h("section", {class: "card", id: "task-timeline"});
  main.append(pageHeading("Task", h("code", {class: "task-id", id: "task-id"}, taskId)),
    summary, timeline);

  async function refresh() {
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    try {
      status = await ctx.api.get(`tasks/${encodeURIComponent(taskId)}`);
      statusError = null;
    } catch (err) {
      statusError = err;
    }
    refreshing = false;
    if (!alive) return;
    draw();
    if (again) {
      again = false;
      setTimeout(refresh, REFRESH_PAUSE_MS);
    }
  }

  function latestEvent() {
    return ctx.store.get(taskId)?.latest || null;
  }

  function field(label, value, attrs = {}) {
    if (value === undefined || value === null || value === "") return null;
    return [h("dt", {}, label), h("dd", attrs, value)];
  }

  function drawSummary() {
    const event = latestEvent();
    // The status document is re-read after every event of this task, and the gateway
    // applies an event to it before sending it out, so it is never older than the last
    // event; the event stands in only while there is no status (yet).
    const doc = status || {};
    const shownState = doc.state || event?.state;
    const task = ctx.store.get(taskId);
    let progress = doc.progress;
    for (const e of task?.events || []) if (e.progress !== undefined) progress = e.progress;
    const result = doc.result !== undefined ? doc.result : event?.result;
    const error = doc.error || event?.error;
    const reason = doc.reason || event?.reason;
    const retries = doc.retries ?? event?.retries;
    const name = doc.name || event?.name;

    const parts = [];
    if (statusError && statusError.status === 404 && !event) {
      parts.push(banner("error", `No task with id ${taskId}: unknown or expired.`));
    } else if (statusError) {
      parts.push(banner("error", `Could not read the task's status: ${describeError(statusError)}`));
    }
    if (shownState) {
      parts.push(h("dl", {class: "facts"},
        field("State", stateBadge(shownState), {id: "task-state", "data-state": shownState}),
        field("Name", name, {id: "task-name"}),
        field("Retries", retries !== undefined ? String(retries) : null, {id: "task-retries"}),
        field("Submitted", formatTime(doc.submitted_at)),
        field("Started", formatTime(doc.started_at)),
        field("Finished", doc.finished_at
          ? `${formatTime(doc.finished_at)} (ran ${formatDuration(doc.started_at || doc.submitted_at, doc.finished_at)})`
          : null)));
      const bar = progressBar(progress);
      if (bar) parts.push(h("div", {class: "task-progress", id: "task-progress"}, "Progress ", bar));
      if (reason) {
        parts.push(h("div", {class: "reason", id: "task-reason"},
          h("strong", {}, "Dead-letter reason: "), h("code", {}, reason),
          REASONS[reason] ? ` — ${REASONS[reason]}. ` : " ",
          h("a", {href: "#/dead-letters"}, "Dead letters")));
      }
      if (error) {
        parts.push(h("div", {class: "error-box", id: "task-error"},
          h("strong", {}, error.type || "error"), ": ", error.message || formatJson(error)));
      }
      if (shownState === "succeeded") {
        parts.push(h("div", {id: "task-result"}, h("strong", {}, "Result"),
          h("pre", {}, formatJson(result, true))));
      }
      if (!TERMINAL.has(shownState)) {
        const button = h("button", {type: "button", class: "danger", id: "revoke"},
          "Revoke task");
        button.addEventListener("click", () => revoke(button));
        parts.push(h("div", {class: "actions"}, button,
          h("span", {class: "muted"}, " stops it if it runs; a queued task never starts")));
      }
      if (revokeNote) parts.push(revokeNote);
    } else if (!statusError) {
      parts.push(h("p", {class: "muted"}, "Loading…"));
    }
    replaceChildren(summary, parts);
  }

  function drawTimeline() {
    const events = ctx.store.get(taskId)?.events || [];
    const rows = events.map((event) => h("tr", {"data-state": event.state},
      h("td", {class: "time"}, formatTime(event.ts)),
      h("td", {}, stateBadge(event.state)),
      h("td", {}, describeEvent(event))));
    const earlier = status && events.length && events[0].state !== "queued"
      ? h("p", {class: "muted"}, "Earlier events happened before this console connected; " +
        "the summary above has the task's times.")
      : null;
    replaceChildren(timeline, h("h2", {}, "Timeline"),
      events.length
        ? h("table", {class: "grid timeline", id: "timeline"},
          h("thead", {}, h("tr", {}, h("th", {}, "Time"), h("th", {}, "State"),
            h("th", {}, "Details"))),
          h("tbody", {}, rows))
        : h("p", {class: "muted"}, "No event of this task reached the console since it " +
          "connected; new ones appear here as they happen."),
      earlier);
  }

  function draw() {
    drawSummary();
    drawTimeline();
  }

  async function revoke(button) {
    button.disabled = true;
    try {
      await ctx.api.delete(`tasks/${encodeURIComponent(taskId)}`);
      revokeNote = banner("info", "Revoke sent; the task ends revoked.");
    } catch (err) {
      revokeNote = banner("error", `Revoke failed: ${describeError(err)}`);
    }
    if (alive) refresh();
  }

  const unsubscribe = ctx.store.subscribe((task) => {
    if (task && task.id !== taskId) return;
    draw();
    refresh();
  });
  draw();
  refresh();
  return () => {
    alive = false;
    unsubscribe();
  };
}

function describeEvent(event) {
  const parts = [];
  if (event.progress !== undefined) {
    parts.push(progressBar(event.progress) || h("code", {}, formatJson(event.progress)));
  }
  if (typeof event.retries === "number" && event.retries > 0) parts.push(` retries ${event.retries} `);
  if (event.error) parts.push(h("span", {class: "error-text"}, ` ${event.error.type}: ${event.error.message}`));
  if (event.reason) parts.push(h("span", {}, " reason ", h("code", {}, event.reason)));
  if (event.state === "succeeded" && event.result !== undefined) {
    parts.push(h("span", {}, " result ", h("code", {}, formatJson(event.result))));
  }
  return parts;
}
