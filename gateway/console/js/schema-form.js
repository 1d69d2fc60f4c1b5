// A submit form generated from a task's announced arguments schema (broker.arguments):
// one JSON Schema object whose properties are the parameters, `required`, defaults, and
// x-cargo-positional / x-cargo-positional-only / x-cargo-varargs for where each goes.
//
// Fields: string, number, integer, boolean, enum, array of scalars (one per line); any
// other schema gets a JSON textarea. The gateway is the one validator: the form sends
// what was typed (the browser's own checks are off) and shows a 422's details beside
// the field each one names, the rest above the button. It only refuses locally what it
// cannot send at all (text in a number field, JSON that does not parse).

import {h} from "./dom.js";
import {formatJson} from "./format.js";

const SCALARS = new Set(["string", "number", "integer", "boolean"]);
const isScalar = (v) => v === null || ["string", "number", "boolean"].includes(typeof v);

export function fieldKind(schema) {
  if (!schema || typeof schema !== "object") return "json";
  if (Array.isArray(schema.enum) && schema.enum.length && schema.enum.every(isScalar)) return "enum";
  switch (schema.type) {
    case "boolean": return "boolean";
    case "integer": case "number": return "number";
    case "string": return "string";
    case "array": {
      const items = schema.items;
      if (items && typeof items === "object" && (SCALARS.has(items.type) ||
        (Array.isArray(items.enum) && items.enum.every(isScalar)))) return "list";
      return "json";
    }
    default: return "json";
  }
}

/** "integer, 1 to 1000" — what a field takes, from the schema's own keywords. */
function hint(schema, kind) {
  const words = [];
  if (kind === "json") words.push("JSON");
  else if (kind === "list") words.push(`one ${schema.items.type || "value"} per line`);
  else if (kind !== "enum" && schema.type) words.push(schema.type);
  if (schema.minimum !== undefined) words.push(`≥ ${schema.minimum}`);
  if (schema.exclusiveMinimum !== undefined) words.push(`> ${schema.exclusiveMinimum}`);
  if (schema.maximum !== undefined) words.push(`≤ ${schema.maximum}`);
  if (schema.exclusiveMaximum !== undefined) words.push(`< ${schema.exclusiveMaximum}`);
  if (schema.minLength !== undefined) words.push(`at least ${schema.minLength} characters`);
  if (schema.maxLength !== undefined) words.push(`at most ${schema.maxLength} characters`);
  if (schema.default !== undefined) words.push(`default ${formatJson(schema.default)}`);
  return words.join(", ");
}

function scalarFromText(text, type) {
  if (type === "number" || type === "integer") {
    const value = Number(text);
    return text.trim() === "" || Number.isNaN(value)
      ? {problem: `${JSON.stringify(text)} is not a number`} : {value};
  }
  if (type === "boolean") {
    if (text === "true" || text === "false") return {value: text === "true"};
    return {problem: `${JSON.stringify(text)} is not true or false`};
  }
  return {value: text};
}

/** One field: its element, how to read it, where its errors go. */
function makeField(name, schema, required, prefix) {
  const kind = fieldKind(schema);
  const id = `${prefix}-${name}`;
  const errorEl = h("p", {class: "field-error", id: `${id}-error`, "data-error-for": name,
    role: "alert", hidden: true});
  const described = `${id}-hint ${id}-error`;
  const common = {id, name, "aria-describedby": described, "aria-required": required ? "true" : null};
  const fallback = schema?.default;
  let input;
  let read;

  if (kind === "boolean" && (required || fallback !== undefined)) {
    input = h("input", {...common, type: "checkbox", checked: fallback === true});
    read = () => ({present: true, value: input.checked});
  } else if (kind === "boolean" || kind === "enum") {
    const choices = kind === "enum" ? schema.enum : [true, false];
    input = h("select", common,
      h("option", {value: ""}, required ? "— choose —" : "(not set)"),
      choices.map((choice, i) => h("option", {value: String(i), selected: choice === fallback},
        formatJson(choice))));
    read = () => (input.value === "" ? {present: false}
      : {present: true, value: choices[Number(input.value)]});
  } else if (kind === "number") {
    input = h("input", {...common, type: "number", inputmode: "decimal",
      step: schema.type === "integer" ? "1" : "any", value: fallback ?? ""});
    read = () => {
      if (input.validity.badInput) return {problem: "not a number"};
      if (input.value === "") return {present: false};
      return {present: true, value: Number(input.value)};
    };
  } else if (kind === "string") {
    input = h("input", {...common, type: "text", value: fallback ?? "", spellcheck: "false"});
    read = () => (input.value === "" ? {present: false} : {present: true, value: input.value});
  } else if (kind === "list") {
    input = h("textarea", {...common, rows: 3, spellcheck: "false",
      value: Array.isArray(fallback) ? fallback.join("\n") : ""});
    read = () => {
      const lines = input.value.split("\n").filter((line) => line.trim() !== "");
      if (!lines.length) return {present: false};
      const value = [];
      for (const [i, line] of lines.entries()) {
        const item = scalarFromText(line.trim(), schema.items.type);
        if (item.problem) return {problem: `line ${i + 1}: ${item.problem}`};
        value.push(item.value);
      }
      return {present: true, value};
    };
  } else {
    input = h("textarea", {...common, rows: 4, spellcheck: "false", class: "json",
      value: fallback !== undefined ? formatJson(fallback, true) : ""});
    read = () => {
      if (input.value.trim() === "") return {present: false};
      try {
        return {present: true, value: JSON.parse(input.value)};
      } catch (err) {
        return {problem: `not valid JSON (${err.message})`};
      }
    };
  }

  const label = h("label", {for: id},
    h("code", {}, name), required ? h("span", {class: "required", title: "required"}, " *") : null,
    schema?.title && schema.title.toLowerCase() !== name.replace(/_/g, " ").toLowerCase()
      ? h("span", {class: "muted"}, ` ${schema.title}`) : null);
  const help = h("p", {class: "hint", id: `${id}-hint`},
    [schema?.description, hint(schema || {}, kind)].filter(Boolean).join(" — "));
  const element = h("div", {class: `field field-${kind}`, "data-field": name},
    label, input, help, errorEl);

  return {
    name, kind, element, input,
    read,
    showError(message) {
      errorEl.hidden = false;
      errorEl.textContent = errorEl.textContent ? `${errorEl.textContent}; ${message}` : message;
      input.setAttribute("aria-invalid", "true");
    },
    clearError() {
      errorEl.hidden = true;
      errorEl.textContent = "";
      input.removeAttribute("aria-invalid");
    },
  };
}

const OPTION_SCHEMAS = {
  countdown: {type: "number", minimum: 0, description: "seconds to wait before it runs"},
  priority: {type: "integer", minimum: 0, maximum: 255},
  idempotency_key: {type: "string", minLength: 1, maxLength: 256,
    description: "the same key again returns the first submission's task"},
};

/**
 * @returns {element, collect() -> {body, problems}, showProblems(problems),
 *           showErrors(details) -> the details no field took, clearErrors()}
 */
export function schemaForm(schema, prefix = "arg") {
  const properties = (schema && typeof schema.properties === "object") ? schema.properties : {};
  const required = new Set(Array.isArray(schema?.required) ? schema.required : []);
  const positional = Array.isArray(schema?.["x-cargo-positional"]) ? schema["x-cargo-positional"] : [];
  const positionalOnly = new Set(schema?.["x-cargo-positional-only"] || []);
  const fields = new Map();
  for (const [name, propertySchema] of Object.entries(properties)) {
    fields.set(name, makeField(name, propertySchema, required.has(name), prefix));
  }
  const varargs = schema?.["x-cargo-varargs"] === true
    ? makeField("*args", {type: "array", description: "more positional arguments"}, false, prefix)
    : null;
  const extra = schema?.additionalProperties === true || typeof schema?.additionalProperties === "object"
    ? makeField("**kwargs", {type: "object", description: "more keyword arguments"}, false, prefix)
    : null;
  const options = new Map(Object.entries(OPTION_SCHEMAS).map(
    ([name, s]) => [name, makeField(name, s, false, `${prefix}-option`)]));

  const element = h("div", {class: "schema-form"},
    fields.size ? [...fields.values()].map((f) => f.element)
      : h("p", {class: "muted"}, "This task takes no arguments."),
    varargs?.element, extra?.element,
    h("details", {class: "options"}, h("summary", {}, "Options"),
      [...options.values()].map((f) => f.element)));

  function collect() {
    const problems = [];
    const values = new Map();
    const readAll = (list, into) => {
      for (const field of list) {
        const result = field.read();
        if (result.problem) problems.push({field, message: result.problem});
        else if (result.present) into.set(field.name, result.value);
      }
    };
    readAll(fields.values(), values);
    const optionValues = new Map();
    readAll(options.values(), optionValues);
    const more = varargs ? varargs.read() : {present: false};
    const moreKw = extra ? extra.read() : {present: false};
    if (more.problem) problems.push({field: varargs, message: more.problem});
    if (moreKw.problem) problems.push({field: extra, message: moreKw.problem});
    if (more.present && !Array.isArray(more.value)) {
      problems.push({field: varargs, message: "must be a JSON array"});
    }
    if (moreKw.present && (typeof moreKw.value !== "object" || moreKw.value === null ||
      Array.isArray(moreKw.value))) {
      problems.push({field: extra, message: "must be a JSON object"});
    }

    // Positional-only parameters must come in args, in order; with *args, every
    // positional parameter does. Everything else goes by keyword.
    const args = [];
    const byPosition = more.present ? positional : positional.filter((n) => positionalOnly.has(n));
    let gap = null;
    for (const name of byPosition) {
      if (!values.has(name)) {
        gap = gap ?? name;
        continue;
      }
      if (gap !== null) {
        problems.push({field: fields.get(gap),
          message: `give ${gap}: ${name}, after it, can only be passed by position`});
        break;
      }
      args.push(values.get(name));
      values.delete(name);
    }
    if (more.present && Array.isArray(more.value)) args.push(...more.value);
    const kwargs = Object.fromEntries(values);
    if (moreKw.present && moreKw.value && typeof moreKw.value === "object") {
      Object.assign(kwargs, moreKw.value);
    }
    const body = {args, kwargs};
    if (optionValues.size) body.options = Object.fromEntries(optionValues);
    return {body, problems};
  }

  /** The field a 422 detail's loc names: ["kwargs", name], ["args", i], ["options", name]. */
  function locate(loc) {
    if (!Array.isArray(loc) || loc.length < 2) return null;
    const [where, key] = loc;
    if (where === "kwargs") return fields.get(key) || extra;
    if (where === "args" && Number.isInteger(key)) {
      return key < positional.length ? fields.get(positional[key]) || null : varargs;
    }
    if (where === "options") return options.get(key) || null;
    return null;
  }

  function focusFirstError() {
    const first = [...fields.values(), varargs, extra, ...options.values()]
      .find((f) => f && f.input.getAttribute("aria-invalid") === "true");
    if (first) {
      if (options.has(first.name)) element.querySelector("details.options").open = true;
      first.input.focus();
    }
  }

  /** What collect() could not send, beside its field. */
  function showProblems(problems) {
    for (const {field, message} of problems) field.showError(message);
    focusFirstError();
  }

  function showErrors(details) {
    const unplaced = [];
    for (const detail of Array.isArray(details) ? details : []) {
      const field = locate(detail?.loc);
      if (field) field.showError(detail.msg || "invalid");
      else unplaced.push(detail);
    }
    if (!Array.isArray(details) && details !== undefined && details !== null) unplaced.push(details);
    focusFirstError();
    return unplaced;
  }

  function clearErrors() {
    for (const field of [...fields.values(), varargs, extra, ...options.values()]) {
      field?.clearError();
    }
  }

  return {element, collect, showProblems, showErrors, clearErrors};
}

/** A detail the form could not place next to a field, as one line of text. */
export function describeDetail(detail) {
  if (detail && typeof detail === "object" && "msg" in detail) {
    const where = Array.isArray(detail.loc) ? detail.loc.join(".") : "";
    return where ? `${where}: ${detail.msg}` : detail.msg;
  }
  return formatJson(detail);
}
