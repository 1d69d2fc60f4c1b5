// #/tasks — every task the console knows of, live: the recent tasks the gateway listed
// when the console connected (recent.js), and rows that appear and change state as
// events arrive over the WebSocket. Tasks heard of live go on top, newest first; the
// listed ones below them, in the list's order (most recently updated first).
// Filters: task name, state, and a search by id.

import {banner, h, replaceChildren} from "../dom.js";
import {formatClock, formatTime} from "../format.js";
import {STATES, summarize} from "../task-store.js";
import {pageHeading, progressBar, stateBadge, taskLink} from "./common.js";

export function render(main, ctx) {
  const filters = ctx.prefs.tasks ??= {name: "", state: "", id: ""};
  const rows = new Map();  // task_id -> <tr>

  const nameSelect = h("select", {id: "filter-name", name: "name"});
  const stateSelect = h("select", {id: "filter-state", name: "state"},
    h("option", {value: ""}, "any state"),
    STATES.map((state) => h("option", {value: state}, state.replace("_", " "))));
  const idInput = h("input", {
    id: "filter-id", name: "id", type: "search", placeholder: "task id (or part of it)",
    autocomplete: "off", spellcheck: "false", value: filters.id,
  });
  stateSelect.value = filters.state;
  const counter = h("p", {class: "muted", id: "task-count", role: "status"});
  const body = h("tbody", {id: "task-rows"});
  const empty = h("p", {class: "empty muted", id: "tasks-empty"});
  // Where the recent tasks' list stands; data-recent and data-loads say it to the tests.
  const recentStatus = h("div", {id: "recent-status"});

  const idForm = h("form", {class: "filters", role: "search"},
    h("label", {}, "Name ", nameSelect),
    h("label", {}, "State ", stateSelect),
    h("label", {class: "grow"}, "Id ", idInput),
    h("button", {type: "submit", title: "open the task with exactly this id"}, "Open task"));
  idForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = idInput.value.trim();
    if (id) ctx.navigate(`#/tasks/${encodeURIComponent(id)}`);
  });

  main.append(
    pageHeading("Tasks", counter),
    idForm,
    h("table", {class: "grid", id: "tasks-table"},
      h("thead", {}, h("tr", {},
        h("th", {}, "Task id"), h("th", {}, "Name"), h("th", {}, "State"),
        h("th", {}, "Progress"), h("th", {class: "num"}, "Retries"), h("th", {}, "Last event"))),
      body),
    recentStatus,
    empty);

  function visible(task, summary) {
    if (filters.name && task.name !== filters.name) return false;
    if (filters.state && summary.state !== filters.state) return false;
    const id = filters.id.trim().toLowerCase();
    return !id || task.id.toLowerCase().includes(id);
  }

  function fillRow(row, task) {
    const summary = summarize(task);
    row.dataset.state = summary.state || "";
    row.dataset.name = task.name;
    replaceChildren(row,
      h("td", {}, taskLink(task.id)),
      h("td", {class: "task-name"}, task.name),
      h("td", {class: "task-state"}, stateBadge(summary.state)),
      h("td", {}, progressBar(summary.progress)),
      h("td", {class: "num"}, summary.retries),
      h("td", {title: formatTime(summary.ts)}, formatClock(summary.ts)));
    row.hidden = !visible(task, summary);
  }

  /** Rows stay sorted by the tasks' order, highest first: a live task is prepended, a
   * listed one appended, and only a listed task older than a later list's goes between. */
  function place(row, order) {
    const first = body.firstElementChild;
    const last = body.lastElementChild;
    if (!first || order > Number(first.dataset.order)) {
      body.prepend(row);
    } else if (order < Number(last.dataset.order)) {
      body.append(row);
    } else {
      const next = [...body.children].find((r) => Number(r.dataset.order) < order);
      body.insertBefore(row, next || null);
    }
  }

  function upsert(task) {
    let row = rows.get(task.id);
    if (!row) {
      row = h("tr", {"data-task-id": task.id, "data-order": task.order});
      rows.set(task.id, row);
      place(row, task.order);
    }
    fillRow(row, task);
  }

  function refreshNames() {
    const names = new Set([...ctx.store.names(), ...ctx.catalogNames]);
    if (filters.name) names.add(filters.name);
    replaceChildren(nameSelect, h("option", {value: ""}, "any name"),
      [...names].sort().map((name) => h("option", {value: name}, name)));
    nameSelect.value = filters.name;
  }

  function refreshCount() {
    const shown = [...rows.values()].filter((row) => !row.hidden).length;
    counter.textContent = `${shown} of ${rows.size} tasks shown`;
    empty.hidden = rows.size > 0;
    empty.textContent = ctx.recent.status === "loading" || ctx.recent.status === "idle"
      ? "Loading the recent tasks…"
      : "No tasks yet: this gateway knows of none. Tasks appear here as they are " +
        "submitted, queued, run and finish.";
  }

  function refreshRecent() {
    const {status, error, loads} = ctx.recent;
    recentStatus.dataset.recent = status;
    recentStatus.dataset.loads = String(loads);
    if (status === "failed") {
      const retry = h("button", {type: "button", id: "recent-retry"}, "Load again");
      retry.addEventListener("click", () => ctx.recent.load());
      replaceChildren(recentStatus, banner("error",
        `Could not load the recent tasks: ${error}. New tasks still appear as they change. `,
        retry));
    } else {
      recentStatus.replaceChildren();
    }
    refreshCount();
  }

  function refilter() {
    for (const [id, row] of rows) {
      const task = ctx.store.get(id);
      if (task) row.hidden = !visible(task, summarize(task));
    }
    refreshCount();
  }

  nameSelect.addEventListener("change", () => { filters.name = nameSelect.value; refilter(); });
  stateSelect.addEventListener("change", () => { filters.state = stateSelect.value; refilter(); });
  idInput.addEventListener("input", () => { filters.id = idInput.value; refilter(); });

  const tasks = [...ctx.store.tasks.values()].sort((a, b) => b.order - a.order);
  for (const task of tasks) upsert(task);
  refreshNames();
  refreshRecent();

  const unsubscribeRecent = ctx.recent.subscribe(refreshRecent);
  const unsubscribeStore = ctx.store.subscribe((task) => {
    if (task === null) {  // the store was reset (locked): start over
      rows.clear();
      body.replaceChildren();
    } else {
      const known = rows.has(task.id);
      upsert(task);
      if (!known && ![...nameSelect.options].some((o) => o.value === task.name)) refreshNames();
    }
    refreshCount();
  });
  return () => {
    unsubscribeRecent();
    unsubscribeStore();
  };
}
