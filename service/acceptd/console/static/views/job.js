// One job, live: its status and progress from the job's event stream, its deliveries with
// every attempt (redeliver any), cancel, and the curl that would submit it again.
import { api, stream } from "/ui/api.js";
import { TERMINAL, badge, errorBox, every, h, json, progressBar, replace, when } from "/ui/ui.js";

export function render(main, jobId) {
  const head = h("div", { class: "card", id: "job-head" });
  const body = h("div");
  const deliveries = h("div", { class: "scroll", id: "deliveries" });
  const problems = h("div", { "aria-live": "polite" });
  let job = null;

  function curl(current) {
    const submit = { type: current.type, input: current.input };
    if (current.callback_url) submit.callback_url = current.callback_url;
    if (current.metadata && Object.keys(current.metadata).length) submit.metadata = current.metadata;
    const quoted = JSON.stringify(submit).replaceAll("'", "'\\''");
    return `curl -X POST ${location.origin}/v1/jobs -H 'Authorization: Bearer $ACCEPTD_API_KEY' \\\n  -H 'Content-Type: application/json' -d '${quoted}'`;
  }

  function drawJob(current) {
    job = current;
    const copy = h("button", { class: "secondary", type: "button", onclick: async () => {
      await navigator.clipboard.writeText(curl(current)).catch(() => {});
      copy.textContent = "Copied";
    } }, "Copy curl");
    replace(head,
      h("h1", {}, "Job ", h("code", {}, current.id), " ", badge(current.status)),
      h("div", { class: "row" }, progressBar(current.progress.fraction, "job progress"),
        h("span", { id: "progress-text" }, `${Math.round(current.progress.fraction * 100)}% ${current.progress.message || ""}`)),
      h("div", { class: "kv" },
        h("span", { class: "muted" }, "type"), h("span", {}, current.type),
        h("span", { class: "muted" }, "attempts"), h("span", { id: "attempts" }, current.attempts),
        h("span", { class: "muted" }, "created"), h("span", {}, when(current.created_at)),
        h("span", { class: "muted" }, "started"), h("span", {}, when(current.started_at)),
        h("span", { class: "muted" }, "finished"), h("span", {}, when(current.finished_at)),
        current.batch_id ? [h("span", { class: "muted" }, "batch"), h("a", { href: `#/batches/${current.batch_id}` }, current.batch_id)] : null,
        current.schedule_id ? [h("span", { class: "muted" }, "schedule"), h("a", { href: `#/schedules/${current.schedule_id}`, id: "job-schedule" }, current.schedule_id)] : null,
        current.channels && current.channels.length ? [h("span", { class: "muted" }, "channels"), h("span", { id: "job-channels" }, current.channels.join(", "))] : null,
        current.callback_url ? [h("span", { class: "muted" }, "callback"), h("code", {}, current.callback_url)] : null),
      h("div", { class: "actions" },
        TERMINAL.has(current.status) ? null : h("button", { class: "danger", type: "button", id: "cancel",
          onclick: async () => {
            try { drawJob(await api("POST", `/v1/jobs/${jobId}/cancel`)); } catch (error) { replace(problems, errorBox(error)); }
          } }, "Cancel job"),
        copy));
    replace(body,
      h("h2", {}, "Input"), json(current.input),
      current.result !== null ? [h("h2", {}, "Result"), h("div", { id: "result" }, json(current.result))] : null,
      current.error ? [h("h2", {}, "Error"), h("div", { class: "error", id: "job-error" }, `${current.error.title}: ${current.error.detail || ""}`)] : null,
      current.awaiting_input ? [h("h2", {}, "Awaiting input"), h("p", {}, "Until ", when(current.awaiting_input.expires_at), " — ", h("a", { href: "#/review" }, "review it"))] : null,
      h("h2", {}, "Metadata"), json(current.metadata),
      h("h2", {}, "curl"), h("pre", { id: "curl" }, curl(current)));
  }

  async function drawDeliveries() {
    const found = await api("GET", `/v1/jobs/${jobId}/deliveries`);
    if (!found.items.length) { replace(deliveries, h("p", { class: "muted" }, "No webhooks for this job (yet).")); return found; }
    replace(deliveries, found.items.map((d) => h("div", { class: "card", "data-delivery": d.id },
      h("div", { class: "row" }, h("strong", {}, d.event), badge(d.status), h("code", {}, d.url),
        h("button", { class: "secondary", type: "button", "data-redeliver": d.id, onclick: async () => {
          try { await api("POST", `/v1/deliveries/${d.id}/retry`); await drawDeliveries(); } catch (error) { replace(problems, errorBox(error)); }
        } }, "Redeliver")),
      d.next_attempt_at ? h("p", { class: "muted" }, "next attempt ", when(d.next_attempt_at)) : null,
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "At"), h("th", {}, "Code"), h("th", {}, "Latency"), h("th", {}, "Error"), h("th", { class: "hide-narrow" }, "Response"))),
        h("tbody", {}, d.attempts.map((a, i) => h("tr", { "data-attempt": i + 1 },
          h("td", {}, i + 1), h("td", {}, when(a.at)), h("td", {}, a.status_code ?? "–"),
          h("td", {}, `${Math.round(a.latency_ms)} ms`), h("td", {}, a.error || ""),
          h("td", { class: "hide-narrow" }, h("code", {}, (a.response || "").slice(0, 200))))))))));
    return found;
  }

  replace(main, h("p", {}, h("a", { href: "#/jobs" }, "← Jobs")), problems, head, body, h("h2", {}, "Webhook deliveries"), deliveries);
  api("GET", `/v1/jobs/${jobId}`).then(drawJob).catch((error) => replace(problems, errorBox(error)));
  const stopStream = stream(`/v1/jobs/${jobId}/events`, (type, data) => drawJob(JSON.parse(data)));
  // Deliveries have no stream: read them while any is pending or the job still runs.
  const stopDeliveries = every(2000, async () => {
    const found = await drawDeliveries();
    return found;
  });
  return () => { stopStream(); stopDeliveries(); };
}
