// Endpoints: create (with an event picker), enable/disable, rotate the secret (shown once),
// send a test event, delete; each with its last hour (success rate, latency) and deliveries.
import { api, session } from "/ui/api.js";
import { badge, errorBox, every, h, replace, when } from "/ui/ui.js";

// The events come from the API (GET /v1/event-types: core/events.py), not from a copy here.
const DEFAULT_EVENTS = new Set(["job.succeeded", "job.failed", "job.canceled"]);

// "Name: value" lines, as curl's -H takes them; the API judges the names and values.
function headerLines(text) {
  const found = {};
  for (const line of text.split("\n")) {
    const at = line.indexOf(":");
    if (line.trim() && at > 0) found[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return found;
}

export function render(main) {
  // An `endpoints` portal session's endpoints get no job data (the API refuses the rest).
  const portal = (session() || {}).scope === "portal-endpoints";
  const list = h("div", { id: "endpoints" });
  const problems = h("div", { "aria-live": "polite" });
  const revealed = h("div", { "aria-live": "polite", id: "revealed" });
  const open = new Set();  // endpoints whose deliveries are shown

  const url = h("input", { id: "ep-url", type: "url", required: true, placeholder: "https://example.com/webhooks", size: 40 });
  const description = h("input", { id: "ep-description", placeholder: "what receives these" });
  const signing = h("select", { id: "ep-signing" }, ["v1", "v1a", "v1+v1a"].map((v) => h("option", { value: v }, v)));
  const payload = h("select", { id: "ep-payload" }, (portal ? ["thin"] : ["full", "thin"]).map((v) => h("option", { value: v }, v)));
  const ordering = h("select", { id: "ep-ordering" }, ["none", "per_key"].map((v) => h("option", { value: v }, v)));
  const rate = h("input", { id: "ep-rate", type: "number", min: 1, max: 10000, placeholder: "unlimited", size: 8 });
  const headers = h("textarea", { id: "ep-headers", rows: 2, cols: 36, placeholder: "X-Api-Key: value (one a line; stored sealed, never shown again)" });
  const retries = h("input", { id: "ep-retries", placeholder: "server default", size: 16, title: "seconds between attempts, comma-separated: 10,60,600" });
  // A channel's portal session makes endpoints of its channel only (the API sets it).
  const channel = (session() || {}).channel || null;
  const channels = h("input", { id: "ep-channels", placeholder: "every event", size: 16, title: "only events of jobs with one of these channels (comma-separated)" });
  // Filled from the API below; a portal session is offered only what it may subscribe to.
  let boxes = [];
  const picker = h("div", { class: "row", id: "ep-events" });
  api("GET", "/v1/event-types").then((found) => {
    boxes = found.items.filter((e) => !portal || e.portal).map((e) => h("label", { class: "check", title: e.description },
      h("input", { type: "checkbox", value: e.name, checked: DEFAULT_EVENTS.has(e.name), name: "events" }), e.name));
    replace(picker, boxes);
  }).catch((error) => replace(problems, errorBox(error)));
  const form = h("form", { class: "card", "aria-labelledby": "ep-new", onsubmit: async (e) => {
    e.preventDefault();
    const events = boxes.map((b) => b.querySelector("input")).filter((b) => b.checked).map((b) => b.value);
    try {
      const body = { url: url.value.trim(), description: description.value, events, signing: signing.value, payload: payload.value, ordering: ordering.value, rate_limit_per_second: rate.value ? Number(rate.value) : null };
      const named = headerLines(headers.value);
      if (Object.keys(named).length) body.headers = named;
      if (retries.value.trim()) body.retry_schedule = retries.value.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
      const named_channels = channels.value.split(",").map((s) => s.trim()).filter(Boolean);
      if (!channel && named_channels.length) body.channels = named_channels;
      const made = await api("POST", "/v1/endpoints", body);
      showSecret(made.id, made.secret, "created");
      url.value = ""; description.value = ""; headers.value = ""; retries.value = ""; channels.value = "";
      await draw();
    } catch (error) { replace(problems, errorBox(error)); }
  } },
  h("h2", { id: "ep-new" }, "New endpoint"),
  h("div", { class: "row" }, h("label", { for: "ep-url" }, "URL", url), h("label", { for: "ep-description" }, "Description", description),
    h("label", { for: "ep-signing" }, "Signing", signing), h("label", { for: "ep-payload" }, "Payload", payload),
    h("label", { for: "ep-ordering" }, "Ordering", ordering), h("label", { for: "ep-rate" }, "Max per second", rate),
    h("label", { for: "ep-retries" }, "Retry schedule (s)", retries),
    channel ? null : h("label", { for: "ep-channels" }, "Channels", channels),
    h("label", { for: "ep-headers" }, "Headers", headers)),
  h("fieldset", {}, h("legend", {}, "Events"), picker),
  h("button", { type: "submit", id: "ep-create" }, "Create endpoint"));

  function showSecret(id, secret, what) {
    replace(revealed, h("div", { class: "notice", role: "status" },
      h("strong", {}, `Signing secret ${what} for ${id} — shown only now: `), h("span", { class: "secret", id: "shown-secret" }, secret)));
  }

  async function act(call) {
    try { await call(); replace(problems); await draw(); } catch (error) { replace(problems, errorBox(error)); }
  }

  async function deliveriesOf(endpoint) {
    const page = await api("GET", `/v1/endpoints/${endpoint.id}/deliveries?limit=10`);
    return h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Event"), h("th", {}, "Status"), h("th", {}, "Last attempt"), h("th", {}, ""))),
      h("tbody", {}, page.items.map((d) => {
        const last = d.attempts[d.attempts.length - 1];
        return h("tr", { "data-delivery": d.id }, h("td", {}, d.event), h("td", {}, badge(d.status)),
          h("td", {}, last ? `${last.status_code ?? "–"} · ${Math.round(last.latency_ms)} ms · ${when(last.at)} ${last.error || ""}` : "not yet"),
          h("td", {}, h("button", { class: "secondary", type: "button", onclick: () => act(() => api("POST", `/v1/deliveries/${d.id}/retry`)) }, "Redeliver")));
      })));
  }

  async function draw() {
    const found = await api("GET", "/v1/endpoints");
    const cards = await Promise.all(found.items.map(async (endpoint) => {
      const stats = await api("GET", `/v1/endpoints/${endpoint.id}/stats`);
      const rate = stats.success_rate === null ? "no attempts" : `${Math.round(stats.success_rate * 100)}% of ${stats.attempts}`;
      const latency = stats.latency_ms ? `p50 ${Math.round(stats.latency_ms.p50)} ms · p95 ${Math.round(stats.latency_ms.p95)} ms` : "";
      return h("div", { class: "card", "data-endpoint": endpoint.id },
        h("div", { class: "row" }, h("code", {}, endpoint.url), badge(endpoint.disabled ? "disabled" : "enabled")),
        h("p", { class: "muted" }, `${endpoint.id} · ${endpoint.description || "no description"} · ${endpoint.events.join(", ")} · signing ${endpoint.signing} · ${endpoint.payload} payload · ordering ${endpoint.ordering}${endpoint.rate_limit_per_second ? ` · at most ${endpoint.rate_limit_per_second}/s` : ""}`),
        Object.keys(endpoint.headers || {}).length || endpoint.retry_schedule || endpoint.channels
          ? h("p", { class: "muted", "data-options": endpoint.id }, [
            endpoint.channels ? `channels ${endpoint.channels.join(", ")}` : null,
            Object.keys(endpoint.headers || {}).length ? `headers ${Object.keys(endpoint.headers).join(", ")} (values sealed)` : null,
            endpoint.retry_schedule ? `retries after ${endpoint.retry_schedule.join(", ")} s` : null,
          ].filter(Boolean).join(" · ")) : null,
        endpoint.public_key ? h("p", {}, "Public key (verifies v1a): ", h("span", { class: "secret", "data-public-key": endpoint.id }, endpoint.public_key)) : null,
        endpoint.disabled_reason ? h("p", { class: "error" }, endpoint.disabled_reason) : null,
        h("p", { "data-stats": endpoint.id }, `Last hour: ${rate} succeeded${latency ? " · " + latency : ""}`),
        h("div", { class: "actions" },
          h("button", { class: "secondary", type: "button", onclick: () => act(() => api("PATCH", `/v1/endpoints/${endpoint.id}`, { disabled: !endpoint.disabled })) },
            endpoint.disabled ? "Enable" : "Disable"),
          h("button", { class: "secondary", type: "button", "data-rotate": endpoint.id, onclick: () => act(async () => {
            const rotated = await api("POST", `/v1/endpoints/${endpoint.id}/rotate-secret`);
            showSecret(endpoint.id, rotated.secret, "rotated (the old one works 24 h more)");
          }) }, "Rotate secret"),
          h("button", { class: "secondary", type: "button", "data-recover": endpoint.id, onclick: () => act(async () => {
            const since = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
            const started = await api("POST", `/v1/endpoints/${endpoint.id}/recover`, { since });
            replace(revealed, h("div", { class: "notice", role: "status" }, `Sending ${started.total} failed deliveries of the last 24 h again (${started.id}).`));
          }) }, "Recover failed (24 h)"),
          h("button", { class: "secondary", type: "button", "data-test": endpoint.id, onclick: () => act(() => api("POST", `/v1/endpoints/${endpoint.id}/test`)) }, "Send test event"),
          h("button", { class: "secondary", type: "button", "aria-expanded": open.has(endpoint.id), onclick: () => {
            if (open.has(endpoint.id)) open.delete(endpoint.id); else open.add(endpoint.id);
            draw();
          } }, open.has(endpoint.id) ? "Hide deliveries" : "Deliveries"),
          h("button", { class: "danger", type: "button", onclick: () => { if (confirm(`Delete ${endpoint.url}?`)) act(() => api("DELETE", `/v1/endpoints/${endpoint.id}`)); } }, "Delete")),
        open.has(endpoint.id) ? h("div", { class: "scroll" }, await deliveriesOf(endpoint)) : null);
    }));
    replace(list, cards.length ? cards : h("p", { class: "muted" }, "No endpoints yet."));
  }

  replace(main, h("h1", {}, channel ? `Endpoints of ${channel}` : "Endpoints"), problems, revealed, form, list);
  return every(3000, async () => {
    try { await draw(); } catch (error) { replace(problems, errorBox(error)); }
  });
}
