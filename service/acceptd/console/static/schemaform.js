// A form built from a JSON Schema (the job type's `awaits_input`), validated in the browser
// before it is sent; the server validates again. Objects of scalar fields become inputs;
// anything richer is a JSON text area checked for syntax and type.
import { h } from "/ui/ui.js";

function resolve(schema, root) {
  if (schema && schema.$ref) {
    const name = schema.$ref.split("/").pop();
    return resolve((root.$defs || root.definitions || {})[name] || {}, root);
  }
  if (schema && schema.anyOf) {
    const concrete = schema.anyOf.filter((s) => s.type !== "null");
    if (concrete.length === 1) return { ...resolve(concrete[0], root), nullable: true, default: schema.default, title: schema.title, description: schema.description };
  }
  return schema || {};
}

function fieldFor(name, schema, required, prefix) {
  const id = `${prefix}-${name}`;
  const label = schema.title || name;
  const help = schema.description ? h("span", { class: "muted" }, schema.description) : null;
  const error = h("span", { class: "field-error", id: `${id}-error`, "aria-live": "polite" });
  let control, read;
  if (schema.enum) {
    control = h("select", { id, "aria-describedby": `${id}-error` },
      required ? null : h("option", { value: "" }, "—"),
      schema.enum.map((v) => h("option", { value: JSON.stringify(v), selected: v === schema.default }, String(v))));
    read = () => (control.value === "" ? undefined : JSON.parse(control.value));
  } else if (schema.type === "boolean") {
    control = h("input", { id, type: "checkbox", checked: schema.default === true });
    read = () => control.checked;
  } else if (schema.type === "integer" || schema.type === "number") {
    control = h("input", { id, type: "number", step: schema.type === "integer" ? "1" : "any", min: schema.minimum, max: schema.maximum, value: schema.default, "aria-describedby": `${id}-error` });
    read = () => (control.value === "" ? undefined : Number(control.value));
  } else if (schema.type === "string") {
    const long = (schema.maxLength || 1000) > 200;
    control = long ? h("textarea", { id, maxlength: schema.maxLength, "aria-describedby": `${id}-error` }, schema.default || "")
      : h("input", { id, maxlength: schema.maxLength, value: schema.default, "aria-describedby": `${id}-error` });
    read = () => (control.value === "" && !required ? undefined : control.value);
  } else {
    control = h("textarea", { id, "aria-describedby": `${id}-error` }, schema.default === undefined ? "" : JSON.stringify(schema.default, null, 2));
    read = () => (control.value.trim() === "" ? undefined : JSON.parse(control.value));
  }
  const check = () => {
    let value;
    try { value = read(); } catch { return "not valid JSON"; }
    if (value === undefined || value === null) return required && !schema.nullable ? "required" : null;
    if (schema.type === "integer" && !Number.isInteger(value)) return "must be a whole number";
    if ((schema.type === "number" || schema.type === "integer") && Number.isNaN(value)) return "must be a number";
    if (schema.minimum !== undefined && value < schema.minimum) return `at least ${schema.minimum}`;
    if (schema.maximum !== undefined && value > schema.maximum) return `at most ${schema.maximum}`;
    if (typeof value === "string") {
      if (schema.minLength !== undefined && value.length < schema.minLength) return `at least ${schema.minLength} characters`;
      if (schema.maxLength !== undefined && value.length > schema.maxLength) return `at most ${schema.maxLength} characters`;
      if (schema.pattern && !new RegExp(schema.pattern, "u").test(value)) return `must match ${schema.pattern}`;
    }
    if (schema.type === "object" && (typeof value !== "object" || Array.isArray(value))) return "must be a JSON object";
    if (schema.type === "array" && !Array.isArray(value)) return "must be a JSON array";
    return null;
  };
  const text = `${label}${required ? " *" : ""}`;
  const element = schema.type === "boolean"
    ? h("div", {}, h("label", { for: id, class: "check" }, control, text), help, error)
    : h("label", { for: id }, text, control, help, error);
  return { name, element, read, check, error };
}

// {element, value(): the result or throws with the problems shown next to each field}
// `wholeField` names the one JSON field a schema that is not an object of properties becomes.
export function schemaForm(rawSchema, prefix, wholeField = { name: "result", title: "Result (JSON)" }) {
  const root = rawSchema || {};
  const schema = resolve(root, root);
  if (schema.type !== "object" || !schema.properties) {
    const whole = fieldFor(wholeField.name, { ...schema, title: wholeField.title }, true, prefix);
    return { element: whole.element, value: () => validated([whole])[whole.name] };
  }
  const required = new Set(schema.required || []);
  const fields = Object.entries(schema.properties).map(([name, sub]) => fieldFor(name, resolve(sub, root), required.has(name), prefix));
  return { element: h("div", { class: "grid" }, fields.map((f) => f.element)), value: () => validated(fields) };
}

function validated(fields) {
  const result = {};
  let bad = 0;
  for (const field of fields) {
    const problem = field.check();
    field.error.textContent = problem || "";
    if (problem) { bad += 1; continue; }
    const value = field.read();
    if (value !== undefined) result[field.name] = value;
  }
  if (bad) throw new Error(`${bad} field(s) need attention`);
  return result;
}
