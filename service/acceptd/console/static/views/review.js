// The review inbox: every job awaiting input, its request, a form built from its type's
// result schema, and its deadline counting down. Completing or failing uses the job's
// completion token, as any reviewer would.
import { api } from "/ui/api.js";
import { schemaForm } from "/ui/schemaform.js";
import { errorBox, every, h, json, replace } from "/ui/ui.js";

function left(expires) {
  const seconds = Math.max(0, Math.round((new Date(expires) - Date.now()) / 1000));
  const hours = Math.floor(seconds / 3600), minutes = Math.floor((seconds % 3600) / 60);
  return seconds <= 0 ? "expired" : `${hours ? hours + " h " : ""}${minutes} min ${seconds % 60} s left`;
}

export function render(main) {
  const list = h("div", { id: "inbox" });
  const problems = h("div", { "aria-live": "polite" });
  const shown = new Map();  // job id -> its card (kept across refreshes: typing is not lost)
  let schemas = new Map();

  function card(job) {
    const ask = job.awaiting_input;
    const form = schemaForm(schemas.get(job.type), job.id);
    const status = h("div", { "aria-live": "polite" });
    const reason = h("input", { id: `${job.id}-reason`, placeholder: "why it is refused" });
    const countdown = h("span", { class: "muted", "data-deadline": ask.expires_at }, left(ask.expires_at));
    const send = async (path, body) => {
      try {
        await api("POST", path, body, { auth: false });
        shown.delete(job.id);
        element.remove();
      } catch (error) { replace(status, errorBox(error)); }
    };
    const element = h("form", { class: "card", "data-review": job.id, "aria-label": `review ${job.id}`,
      onsubmit: (e) => {
        e.preventDefault();
        let result;
        try { result = form.value(); } catch (error) { replace(status, h("div", { class: "error", role: "alert" }, error.message)); return; }
        send(`/v1/jobs/${job.id}/complete`, { token: ask.token, result });
      } },
    h("div", { class: "row" }, h("a", { href: `#/jobs/${job.id}` }, h("code", {}, job.id)), h("strong", {}, job.type), countdown),
    h("h2", {}, "Request"), json(ask.request),
    h("h2", {}, "Decision"), form.element,
    h("div", { class: "actions" },
      h("button", { type: "submit", "data-complete": job.id }, "Complete"),
      h("label", { for: `${job.id}-reason` }, "Reason", reason),
      h("button", { class: "danger", type: "button", "data-fail": job.id,
        onclick: () => send(`/v1/jobs/${job.id}/fail`, { token: ask.token, error: { title: reason.value || "refused in review" } }) }, "Fail")),
    status);
    return element;
  }

  replace(main, h("h1", {}, "Review inbox"), h("p", { class: "muted" }, "Jobs waiting for a decision. Completing needs no API key: the job's token is the permission."), problems, list);
  return every(2000, async () => {
    try {
      if (!schemas.size) {
        const types = await api("GET", "/v1/job-types");
        schemas = new Map(types.items.filter((t) => t.awaits_input).map((t) => [t.name, t.awaits_input]));
      }
      const page = await api("GET", "/v1/jobs?status=awaiting_input&limit=50");
      const ids = new Set(page.items.map((j) => j.id));
      for (const [id, element] of shown) if (!ids.has(id)) { element.remove(); shown.delete(id); }
      for (const job of page.items) if (!shown.has(job.id) && job.awaiting_input) { const c = card(job); shown.set(job.id, c); list.append(c); }
      for (const timer of list.querySelectorAll("[data-deadline]")) timer.textContent = left(timer.dataset.deadline);
      const empty = list.querySelector("#inbox-empty");
      if (!shown.size && !empty) list.append(h("p", { class: "muted", id: "inbox-empty" }, "Nothing waits for review."));
      if (shown.size && empty) empty.remove();
    } catch (error) { replace(problems, errorBox(error)); }
  });
}
