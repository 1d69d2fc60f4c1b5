// Pieces several pages share: state badges, progress bars, page headings.

import {h} from "../dom.js";
import {progressOf} from "../format.js";

export function stateBadge(state) {
  return h("span", {class: `state state-${state || "unknown"}`, "data-state": state || ""},
    (state || "unknown").replace("_", " "));
}

/** A <progress> bar with "done / total" beside it, or null when there is no {done, total}. */
export function progressBar(progress) {
  const fraction = progressOf(progress);
  if (!fraction) return null;
  return h("span", {class: "progress"},
    h("progress", {value: fraction.done, max: fraction.total,
      "aria-label": `${fraction.done} of ${fraction.total}`}),
    h("span", {class: "progress-text"}, `${fraction.done} / ${fraction.total}`));
}

export function pageHeading(title, ...extra) {
  return h("div", {class: "page-heading"}, h("h1", {}, title), ...extra);
}

export function taskLink(taskId, text = taskId) {
  return h("a", {href: `#/tasks/${encodeURIComponent(taskId)}`, class: "task-id"}, text);
}

/** What each dead-letter reason means (the API contract's table). */
export const REASONS = {
  failed: "the task raised and its retries are exhausted",
  memory_limit: "the task grew past its memory limit and was stopped",
  time_limit: "the task ran past its hard time limit",
  delivery_limit: "the message was delivered too many times (workers kept dying on it)",
  poison: "the message could not be decoded or names no known task",
  rejected: "the task rejected its own message",
};
