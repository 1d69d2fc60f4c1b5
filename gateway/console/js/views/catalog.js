// #/catalog[/<name>] — every task live workers announced, with its JSON Schema and a
// submit form generated from it; a successful submission opens the task's live page.

import {describeError} from "../api.js";
import {banner, h, replaceChildren} from "../dom.js";
import {formatJson} from "../format.js";
import {describeDetail, schemaForm} from "../schema-form.js";
import {pageHeading} from "./common.js";

export function render(main, ctx, {name}) {
  let alive = true;
  const list = h("nav", {class: "catalog-list card", "aria-label": "Tasks", id: "catalog-list"},
    h("p", {class: "muted"}, "Loading…"));
  const detail = h("section", {class: "card catalog-detail", id: "catalog-detail"});
  main.append(pageHeading("Catalog"), h("div", {class: "split"}, list, detail));

  function limitsText(limits = {}) {
    const parts = [];
    if (limits.time_limit != null) parts.push(`time limit ${limits.time_limit} s`);
    if (limits.memory_limit_mb != null) parts.push(`memory limit ${limits.memory_limit_mb} MiB`);
    if (limits.max_retries != null) parts.push(`${limits.max_retries} retries`);
    return parts.join(", ");
  }

  function showTask(item) {
    const form = schemaForm(item.schema, "arg");
    const formError = h("div", {id: "submit-error"});
    const button = h("button", {type: "submit", class: "primary", id: "submit-task"},
      `Submit ${item.name}`);
    const element = h("form", {id: "submit-form", novalidate: true, "data-task": item.name},
      form.element, formError, h("div", {class: "actions"}, button));
    element.addEventListener("submit", async (event) => {
      event.preventDefault();
      form.clearErrors();
      formError.replaceChildren();
      const {body, problems} = form.collect();
      if (problems.length) {
        form.showProblems(problems);
        return;
      }
      button.disabled = true;
      try {
        const accepted = await ctx.api.post(`tasks/${encodeURIComponent(item.name)}`, body);
        ctx.navigate(`#/tasks/${encodeURIComponent(accepted.task_id)}`);
      } catch (err) {
        if (!alive) return;
        button.disabled = false;
        const unplaced = err.status === 422 ? form.showErrors(err.details) : [];
        const lines = unplaced.map(describeDetail);
        if (err.status !== 422 || lines.length) {
          formError.append(banner("error", describeError(err),
            lines.length ? h("ul", {}, lines.map((line) => h("li", {}, line))) : null));
        } else {
          formError.append(banner("error", `${err.message}: see the fields marked above.`));
        }
      }
    });

    replaceChildren(detail,
      h("h2", {id: "catalog-task-name"}, item.name),
      item.doc ? h("p", {class: "doc"}, item.doc) : null,
      h("p", {class: "muted"}, `queue ${item.queue}`,
        item.workers != null ? `, offered by ${item.workers} live worker${item.workers === 1 ? "" : "s"}` : "",
        limitsText(item.limits) ? `; ${limitsText(item.limits)}` : ""),
      h("details", {class: "schema", id: "catalog-schema"}, h("summary", {}, "JSON Schema of the arguments"),
        h("pre", {}, formatJson(item.schema, true))),
      h("h3", {}, "Submit"),
      element);
  }

  ctx.api.get("catalog").then((catalog) => {
    if (!alive) return;
    const items = catalog.items || [];
    ctx.catalogNames = items.map((item) => item.name);
    if (!items.length) {
      replaceChildren(list, h("p", {class: "muted"}, "No live worker announced a task."));
      return;
    }
    const chosen = items.find((item) => item.name === name) || (name ? null : items[0]);
    replaceChildren(list, h("ul", {}, items.map((item) => h("li", {},
      h("a", {href: `#/catalog/${encodeURIComponent(item.name)}`, "data-task": item.name,
        "aria-current": item === chosen ? "page" : null}, item.name),
      h("span", {class: "muted"}, ` ${item.queue}`)))));
    if (chosen) showTask(chosen);
    else replaceChildren(detail, banner("error", `No live worker offers a task named ${name}.`));
  }).catch((err) => {
    if (alive) replaceChildren(list, banner("error", `Could not read the catalog: ${describeError(err)}`));
  });
  return () => { alive = false; };
}
