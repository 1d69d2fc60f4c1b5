// Building DOM nodes without innerHTML: every value from the API is set as text, never
// parsed as markup, so a task name or an error message cannot inject anything.

/**
 * h("a", {href: "#/x", class: "link", "data-id": id, onclick: fn}, "text", child, ...)
 * Attributes: `class`, `data-*`, `aria-*` and plain attributes; `on<event>` functions
 * become listeners; `true`/`false` toggle boolean attributes; null/undefined are skipped.
 * Children: nodes, strings and numbers (as text), arrays of them, null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "value" && "value" in node) {
      node.value = value;
    } else if (key === "checked" || key === "selected") {
      node[key] = Boolean(value);
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace all of `node`'s children. */
export function replaceChildren(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** A short message box: kind is "error", "info" or "ok". */
export function banner(kind, ...children) {
  return h("div", {class: `banner ${kind}`, role: kind === "error" ? "alert" : "status"},
    ...children);
}
