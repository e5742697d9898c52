// Batches: each with its counts per status as one bar, and a batch's items.
import { api } from "/ui/api.js";
import { badge, countsBar, errorBox, every, h, progressBar, replace, when } from "/ui/ui.js";

export function render(main, rest) {
  if (rest.length && rest[0]) return renderOne(main, rest[0]);
  const list = h("div", { id: "batches" });
  const problems = h("div", { "aria-live": "polite" });
  replace(main, h("h1", {}, "Batches"), problems, list);
  return every(2000, async () => {
    try {
      const page = await api("GET", "/v1/batches?limit=50");
      replace(list, page.items.length ? page.items.map((b) => h("div", { class: "card", "data-batch": b.id },
        h("div", { class: "row" }, h("a", { href: `#/batches/${b.id}` }, h("code", {}, b.id)), badge(b.status),
          h("span", { class: "muted" }, `${b.total} items · ${b.progress.message || ""} · ${when(b.created_at)}`)),
        countsBar(b.counts, b.total))) : h("p", { class: "muted" }, "No batches yet."));
    } catch (error) { replace(problems, errorBox(error)); }
  });
}

function renderOne(main, batchId) {
  const head = h("div", { class: "card" });
  const items = h("div", { class: "scroll" });
  const problems = h("div", { "aria-live": "polite" });
  replace(main, h("p", {}, h("a", { href: "#/batches" }, "← Batches")), problems, head, h("h2", {}, "Items"), items);
  return every(2000, async () => {
    try {
      const [batch, page] = await Promise.all([
        api("GET", `/v1/batches/${batchId}`), api("GET", `/v1/jobs?batch=${batchId}&limit=100`)]);
      replace(head,
        h("h1", {}, "Batch ", h("code", {}, batch.id), " ", badge(batch.status)),
        h("div", { class: "row" }, progressBar(batch.progress.fraction, "batch progress"), h("span", {}, batch.progress.message || "")),
        countsBar(batch.counts, batch.total),
        h("p", { class: "muted" }, Object.entries(batch.counts).filter(([, n]) => n).map(([s, n]) => `${s} ${n}`).join(" · ")),
        batch.status === "completed" ? null : h("button", { class: "danger", type: "button", onclick: async () => {
          try { await api("POST", `/v1/batches/${batchId}/cancel`); } catch (error) { replace(problems, errorBox(error)); }
        } }, "Cancel unfinished items"));
      replace(items, h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Job"), h("th", {}, "Status"), h("th", {}, "Progress"))),
        h("tbody", {}, page.items.map((job) => h("tr", {},
          h("td", {}, h("a", { href: `#/jobs/${job.id}` }, h("code", {}, job.id))), h("td", {}, badge(job.status)),
          h("td", {}, progressBar(job.progress.fraction)))))),
        page.next_cursor ? h("p", { class: "muted" }, h("a", { href: `#/jobs?batch=${batchId}` }, "All items in the jobs view →")) : null);
    } catch (error) { replace(problems, errorBox(error)); }
  });
}
