// Small DOM helpers. Text always goes in as text (never as HTML): nothing a job, an endpoint
// or a receiver returns can inject markup.
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function badge(status) {
  return h("span", { class: `badge s-${status}`, "data-status": status }, status.replace("_", " "));
}

export function progressBar(fraction, label) {
  const inner = h("span");
  inner.style.width = `${Math.round(fraction * 100)}%`;
  return h("div", {
    class: "bar", role: "progressbar", "aria-label": label || "progress",
    "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(fraction * 100),
  }, inner);
}

export function json(value) {
  return h("pre", {}, JSON.stringify(value, null, 2));
}

export function when(value, timeZone) {
  if (!value) return "";
  const date = new Date(value);
  return date.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium", timeZone });
}

// How far off a time is, in words: "in 42 s", "3 min ago" (updated by each redraw).
export function relative(value) {
  if (!value) return "";
  const seconds = Math.round((new Date(value) - Date.now()) / 1000);
  const size = Math.abs(seconds);
  if (size < 1) return "now";
  const amount = size < 60 ? `${size} s` : size < 5400 ? `${Math.round(size / 60)} min`
    : size < 129600 ? `${Math.round(size / 3600)} h` : `${Math.round(size / 86400)} d`;
  return seconds > 0 ? `in ${amount}` : `${amount} ago`;
}

export function errorBox(error) {
  const problem = error.problem || {};
  return h("div", { class: "error", role: "alert" },
    error.message,
    (problem.errors || []).map((e) => h("div", {}, `${e.field}: ${e.detail}`)));
}

export function replace(target, ...children) {
  target.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

export const STATUSES = ["scheduled", "queued", "running", "awaiting_input", "succeeded", "failed", "canceled"];
export const TERMINAL = new Set(["succeeded", "failed", "canceled"]);

export function countsBar(counts, total) {
  const parts = STATUSES.filter((s) => counts[s]).map((s) => {
    const part = h("span", { class: `c-${s}`, title: `${s}: ${counts[s]}` });
    part.style.width = `${(100 * counts[s]) / Math.max(total, 1)}%`;
    return part;
  });
  return h("div", { class: "stack", role: "img", "aria-label": STATUSES.filter((s) => counts[s]).map((s) => `${s} ${counts[s]}`).join(", ") }, parts);
}

// Runs `tick` now and every `ms` while the view is shown; returns a stop function.
export function every(ms, tick) {
  let stopped = false, timer;
  const run = async () => {
    if (stopped) return;
    try { await tick(); } catch (error) { console.warn(error); }
    if (!stopped) timer = setTimeout(run, document.hidden ? ms * 5 : ms);
  };
  run();
  return () => { stopped = true; clearTimeout(timer); };
}
