// #/dead-letters — the dead-letter queues: list with filters (queue, reason), replay a
// task (it runs again, same id), and purge a queue after an explicit confirmation.

import {describeError} from "../api.js";
import {banner, h, replaceChildren} from "../dom.js";
import {formatJson, formatTime} from "../format.js";
import {pageHeading, REASONS, taskLink} from "./common.js";

const PAGE_SIZE = 100;

export function render(main, ctx) {
  let alive = true;
  // One listing at a time: the gateway reads a dead-letter queue by taking its messages
  // and putting them back, so a second listing running at the same moment can miss
  // them. A change of filter during a listing lists again once it is done.
  let listing = null;
  let listAgain = false;
  const filters = ctx.prefs.deadLetters ??= {queue: "", reason: ""};
  const queueSelect = h("select", {id: "dl-queue", name: "queue"});
  const reasonSelect = h("select", {id: "dl-reason", name: "reason"},
    h("option", {value: ""}, "any reason"),
    Object.keys(REASONS).map((r) => h("option", {value: r}, r.replace("_", " "))));
  reasonSelect.value = filters.reason;
  const purgeButton = h("button", {type: "button", class: "danger", id: "purge"}, "Purge…");
  const refreshButton = h("button", {type: "button", id: "dl-refresh"}, "Refresh");
  const notice = h("div", {id: "dl-notice"});       // what the last purge did
  const listError = h("div", {id: "dl-list-error"}); // why the list could not be read
  const confirmBox = h("div", {id: "purge-confirm"});
  const body = h("tbody", {id: "dl-rows"});
  const more = h("div", {class: "actions"});
  const counter = h("p", {class: "muted", id: "dl-count", role: "status"});

  main.append(
    pageHeading("Dead letters", counter),
    h("form", {class: "filters"},
      h("label", {}, "Queue ", queueSelect),
      h("label", {}, "Reason ", reasonSelect),
      refreshButton, purgeButton),
    notice, confirmBox, listError,
    h("table", {class: "grid", id: "dl-table"},
      h("thead", {}, h("tr", {},
        h("th", {}, "Task id"), h("th", {}, "Name"), h("th", {}, "Queue"),
        h("th", {}, "Reason"), h("th", {}, "Error"), h("th", {}, "Dead-lettered"),
        h("th", {}, "Arguments"), h("th", {}, ""))),
      body),
    more);

  function fillQueues(queues) {
    const names = new Set(queues);
    if (filters.queue) names.add(filters.queue);
    replaceChildren(queueSelect, h("option", {value: ""}, "every queue"),
      [...names].sort().map((q) => h("option", {value: q}, q)));
    queueSelect.value = filters.queue;
    purgeButton.disabled = !filters.queue;
    purgeButton.title = filters.queue
      ? `remove every dead letter of queue ${filters.queue}` : "choose a queue to purge";
  }

  function row(item) {
    const action = h("td", {class: "row-actions"});
    const replay = h("button", {type: "button", class: "replay"}, "Replay");
    replay.addEventListener("click", async () => {
      replay.disabled = true;
      try {
        await ctx.api.post(`dead-letters/${encodeURIComponent(item.task_id)}/replay`, undefined,
          {queue: item.queue});
        tr.dataset.replayed = "true";
        replaceChildren(action, h("span", {class: "ok-text"}, "Replayed: "),
          taskLink(item.task_id, "follow the task"));
      } catch (err) {
        replay.disabled = false;
        replaceChildren(action, replay, h("div", {class: "error-text"}, describeError(err)));
      }
    });
    action.append(replay);
    const args = {args: item.args, kwargs: item.kwargs};
    const tr = h("tr", {"data-task-id": item.task_id, "data-reason": item.reason},
      h("td", {}, taskLink(item.task_id)),
      h("td", {}, item.name),
      h("td", {}, item.queue),
      h("td", {title: REASONS[item.reason] || ""}, h("code", {}, item.reason)),
      h("td", {class: "error-text"}, item.error ? `${item.error.type}: ${item.error.message}` : ""),
      h("td", {class: "time"}, formatTime(item.dead_lettered_at)),
      h("td", {title: formatJson(args, true)}, h("code", {class: "args"}, formatJson(args))),
      action);
    return tr;
  }

  async function load(next) {
    if (!next) {
      body.replaceChildren();
      counter.textContent = "Loading…";
    }
    more.replaceChildren();
    let page;
    try {
      page = next
        ? await ctx.api.get(next)
        : await ctx.api.get("dead-letters", {queue: filters.queue, reason: filters.reason,
          limit: PAGE_SIZE});
    } catch (err) {
      if (!alive) return;
      counter.textContent = "";
      replaceChildren(listError,
        banner("error", `Could not list dead letters: ${describeError(err)}`));
      return;
    }
    if (!alive) return;
    listError.replaceChildren();
    for (const item of page.items) body.append(row(item));
    const count = body.rows.length;
    counter.textContent = count
      ? `${count} dead letter${count === 1 ? "" : "s"}${page.next ? " (more below)" : ""}`
      : "No dead letters match.";
    if (page.next) {
      const button = h("button", {type: "button", id: "dl-more"}, "Load more");
      button.addEventListener("click", () => {
        if (!listing) listing = load(page.next).finally(() => { listing = null; });
      });
      more.append(button);
    }
  }

  function askPurge() {
    const queue = filters.queue;
    if (!queue) return;
    const cancel = h("button", {type: "button", id: "purge-cancel"}, "Cancel");
    const confirm = h("button", {type: "button", class: "danger", id: "purge-confirm-button"},
      `Purge ${queue}`);
    cancel.addEventListener("click", () => confirmBox.replaceChildren());
    confirm.addEventListener("click", async () => {
      confirm.disabled = true;
      cancel.disabled = true;
      try {
        const result = await ctx.api.delete("dead-letters", {queue});
        replaceChildren(notice, banner("ok", `Purged ${result.purged} dead letters of ${queue}.`));
      } catch (err) {
        replaceChildren(notice, banner("error", `Purge failed: ${describeError(err)}`));
      }
      confirmBox.replaceChildren();
      if (alive) relist();
    });
    replaceChildren(confirmBox, h("div", {class: "confirm card", role: "alertdialog",
      "aria-labelledby": "purge-question"},
    h("p", {id: "purge-question"}, h("strong", {}, `Purge every dead letter of queue ${queue}?`),
      " They are deleted for good and can no longer be replayed."),
    h("div", {class: "actions"}, cancel, confirm)));
    cancel.focus();
  }

  function relist() {
    if (listing) {
      listAgain = true;
      return;
    }
    listing = load().finally(() => {
      listing = null;
      if (listAgain && alive) {
        listAgain = false;
        relist();
      }
    });
  }

  queueSelect.addEventListener("change", () => {
    filters.queue = queueSelect.value;
    notice.replaceChildren();
    fillQueues([...queueSelect.options].map((o) => o.value).filter(Boolean));
    confirmBox.replaceChildren();
    relist();
  });
  reasonSelect.addEventListener("change", () => { filters.reason = reasonSelect.value; relist(); });
  refreshButton.addEventListener("click", () => relist());
  purgeButton.addEventListener("click", askPurge);

  // The queues to choose from: those of the announced tasks.
  fillQueues([]);
  ctx.api.get("catalog").then((catalog) => {
    if (alive) fillQueues([...new Set(catalog.items.map((item) => item.queue))]);
  }).catch(() => {});
  relist();
  return () => { alive = false; };
}
