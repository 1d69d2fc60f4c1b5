// #/queues — the task queues (depth = ready + unacked, consumers, the dead-letter
// queue's depth) and the live workers (queues, concurrency, memory), re-read every few
// seconds while the page is open.

import {describeError} from "../api.js";
import {banner, h, replaceChildren} from "../dom.js";
import {formatAgo, formatBytes, formatClock, formatTime} from "../format.js";
import {pageHeading} from "./common.js";

const REFRESH_MS = 5000;

export function render(main, ctx) {
  let alive = true;
  let timer = null;
  const updated = h("p", {class: "muted", id: "queues-updated", role: "status"}, "Loading…");
  const queuesSection = h("section", {class: "card", id: "queues"});
  const workersSection = h("section", {class: "card", id: "workers"});
  main.append(pageHeading("Queues & workers", updated), queuesSection, workersSection);

  function drawQueues(doc, error) {
    if (error) {
      replaceChildren(queuesSection, h("h2", {}, "Queues"),
        banner("error", `Could not read the queues: ${describeError(error)}`));
      return;
    }
    const rows = doc.queues.map((q) => {
      const depth = (q.ready ?? 0) + (q.unacked ?? 0);
      return h("tr", {"data-queue": q.name},
        h("td", {}, h("code", {}, q.name)),
        h("td", {class: "num", "data-field": "depth"}, depth),
        h("td", {class: "num", "data-field": "ready"}, q.ready),
        h("td", {class: "num", "data-field": "unacked"}, q.unacked),
        h("td", {class: "num", "data-field": "consumers"}, q.consumers),
        h("td", {}, h("code", {}, q.dead_letter?.name ?? "")),
        h("td", {class: "num", "data-field": "dead-letter-ready"},
          q.dead_letter ? h("a", {href: "#/dead-letters"}, String(q.dead_letter.ready)) : ""));
    });
    replaceChildren(queuesSection, h("h2", {}, "Queues"),
      rows.length
        ? h("table", {class: "grid", id: "queues-table"},
          h("thead", {}, h("tr", {},
            h("th", {}, "Queue"), h("th", {class: "num", title: "ready + unacked"}, "Depth"),
            h("th", {class: "num"}, "Ready"), h("th", {class: "num"}, "Unacked"),
            h("th", {class: "num"}, "Consumers"), h("th", {}, "Dead-letter queue"),
            h("th", {class: "num"}, "Dead letters"))),
          h("tbody", {}, rows))
        : h("p", {class: "muted"}, "No task queue."));
  }

  function drawWorkers(doc, error) {
    if (error) {
      replaceChildren(workersSection, h("h2", {}, "Workers"),
        banner("error", `Could not read the workers: ${describeError(error)}`));
      return;
    }
    // A worker of an older release announces no figures: null, shown as a dash.
    const figure = (value) => value ?? "—";
    const rows = doc.workers.map((w) => h("tr", {"data-worker": w.hostname},
      h("td", {}, h("code", {}, w.hostname)),
      h("td", {}, (w.queues || []).join(", ")),
      h("td", {class: "num", "data-field": "concurrency"}, figure(w.concurrency)),
      h("td", {class: "num", "data-field": "processes"}, figure(w.processes)),
      h("td", {class: "num", "data-field": "memory",
        title: w.rss_bytes == null ? "not announced" : `${w.rss_bytes} bytes`},
      w.rss_bytes == null ? "—" : formatBytes(w.rss_bytes)),
      h("td", {title: formatTime(w.last_seen)}, formatAgo(w.last_seen))));
    replaceChildren(workersSection, h("h2", {}, "Workers"),
      rows.length
        ? h("table", {class: "grid", id: "workers-table"},
          h("thead", {}, h("tr", {},
            h("th", {}, "Worker"), h("th", {}, "Queues"), h("th", {class: "num"}, "Concurrency"),
            h("th", {class: "num"}, "Processes"), h("th", {class: "num"}, "Memory (RSS)"),
            h("th", {}, "Last seen"))),
          h("tbody", {}, rows))
        : h("p", {class: "muted"}, "No live worker."));
  }

  async function refresh() {
    const [queues, workers] = await Promise.allSettled([
      ctx.api.get("queues"), ctx.api.get("workers")]);
    if (!alive) return;
    drawQueues(queues.value, queues.reason);
    drawWorkers(workers.value, workers.reason);
    updated.textContent = `Updated ${formatClock(new Date().toISOString())}, ` +
      `every ${REFRESH_MS / 1000} s`;
    timer = setTimeout(refresh, REFRESH_MS);
  }

  refresh();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
