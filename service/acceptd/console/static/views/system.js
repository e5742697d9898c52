// The system: queue depths, how the workers are shared between tenants, and the workers and
// dispatchers alive (operator keys), and the
// tenant's jobs and deliveries per minute over the last hour (bar charts drawn as SVG, no library).
import { api } from "/ui/api.js";
import { badge, errorBox, every, h, replace, when } from "/ui/ui.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  for (const child of children) element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return element;
}

function chart(title, points, key) {
  const width = 600, height = 140, pad = 18;
  const peak = Math.max(1, ...points.map((p) => p[key]));
  const step = (width - 2 * pad) / points.length;
  const bars = points.map((p, i) => {
    const tall = ((height - 2 * pad) * p[key]) / peak;
    return svg("rect", { x: pad + i * step + 1, y: height - pad - tall, width: Math.max(1, step - 2), height: tall },
      svg("title", {}, `${new Date(p.minute).toLocaleTimeString()}: ${p[key]}`));
  });
  const total = points.reduce((sum, p) => sum + p[key], 0);
  return h("figure", { class: "card chart", "data-chart": key },
    h("figcaption", {}, `${title}: ${total} in the last hour, peak ${peak}/min`),
    svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${title} per minute` },
      svg("text", { x: pad, y: 12 }, String(peak)), svg("text", { x: pad, y: height - 4 }, "−60 min"),
      svg("text", { x: width - pad - 24, y: height - 4 }, "now"), ...bars));
}

export function render(main) {
  const body = h("div");
  const problems = h("div", { "aria-live": "polite" });
  replace(main, h("h1", {}, "System"), problems, body);
  return every(5000, async () => {
    try {
      const system = await api("GET", "/v1/system");
      const lastHour = [h("h2", {}, "Last hour"),
        chart("Jobs submitted", system.per_minute, "jobs"),
        chart("Webhook deliveries", system.per_minute, "deliveries")];
      // Queues hold every tenant's work and process names carry hosts: operator keys only.
      if (system.scope !== "system") {
        replace(body, h("p", { class: "muted", id: "operator-only" },
          "Queues and processes are shown to operator keys (acceptd tenants operator-key)."), ...lastHour);
        return;
      }
      replace(body,
        h("h2", {}, "Queues"),
        h("div", { class: "grid", id: "queues" }, Object.entries(system.queues).map(([name, depth]) =>
          h("div", { class: "stat", "data-queue": name }, h("span", { class: "muted" }, name.replace("_", " ")), h("b", {}, depth)))),
        h("h2", {}, "Tenants"),
        system.tenants.length ? h("table", { id: "tenants" },
          h("thead", {}, h("tr", {}, ...["Tenant", "Queued", "Running", "Share", "Weight", "Max running"].map((t) => h("th", {}, t)))),
          h("tbody", {}, system.tenants.map((t) => h("tr", { "data-tenant": t.tenant }, h("td", {}, t.tenant),
            h("td", {}, t.queued), h("td", {}, t.running), h("td", {}, `${Math.round(t.share * 100)} %`),
            h("td", {}, t.weight), h("td", {}, t.max_running ?? "no cap")))))
          : h("p", { class: "muted" }, "No tenant has jobs queued or running."),
        h("h2", {}, "Processes"),
        system.processes.length ? h("table", { id: "processes" },
          h("thead", {}, h("tr", {}, h("th", {}, "Role"), h("th", {}, "Process"), h("th", {}, "State"), h("th", {}, "Last seen"))),
          h("tbody", {}, system.processes.map((p) => h("tr", {}, h("td", {}, p.role), h("td", {}, h("code", {}, p.name)),
            h("td", {}, badge(p.alive ? "alive" : "gone")), h("td", {}, when(p.last_seen_at))))))
          : h("p", { class: "muted" }, "No worker or dispatcher has reported yet."),
        ...lastHour);
    } catch (error) { replace(problems, errorBox(error)); }
  });
}
