// Jobs: filter by status, type, batch and time; counts per status; cursor paging. The first
// page refreshes itself every 2 s; `#/jobs/<id>` is one job (job.js).
import { api } from "/ui/api.js";
import { STATUSES, badge, countsBar, errorBox, every, h, progressBar, replace, when } from "/ui/ui.js";

const WINDOWS = { "": "any time", "3600": "last hour", "86400": "last 24 h", "604800": "last 7 days" };

export function render(main, rest, params) {
  if (rest.length && rest[0]) return import("/ui/views/job.js").then((view) => view.render(main, rest[0]));
  const filters = {
    status: params.get("status") || "", type: params.get("type") || "",
    batch: params.get("batch") || "", window: params.get("window") || "",
  };
  const cursors = [null];  // the cursor of each page seen: Newer goes back one
  const counts = h("div", { class: "counts", "aria-label": "jobs per status" });
  const table = h("div", { class: "scroll" });
  const pager = h("div", { class: "row" });
  const problems = h("div", { "aria-live": "polite" });

  const select = (id, label, options, value) => h("label", { for: id }, label,
    h("select", { id, onchange: (e) => go({ [id.replace("f-", "")]: e.target.value }) },
      Object.entries(options).map(([v, text]) => h("option", { value: v, selected: v === value }, text))));
  const typeSelect = select("f-type", "Type", { "": "all types" }, filters.type);
  api("GET", "/v1/job-types").then((types) => {
    const box = typeSelect.querySelector("select");
    for (const t of types.items) box.append(h("option", { value: t.name, selected: t.name === filters.type }, t.name));
  }).catch(() => {});
  const batchInput = h("input", { id: "f-batch", value: filters.batch, placeholder: "bat_…", size: 30 });

  function go(change) {
    const next = new URLSearchParams({ ...filters, ...change });
    for (const [k, v] of [...next]) if (!v) next.delete(k);
    location.hash = `#/jobs?${next}`;
  }

  function query(extra) {
    const q = new URLSearchParams(extra);
    if (filters.type) q.set("type", filters.type);
    if (filters.window) q.set("since", new Date(Date.now() - Number(filters.window) * 1000).toISOString());
    return q;
  }

  let counted = null, lastSignature = null, ticks = 0;
  async function draw(withCounts = true) {
    const q = query({ limit: "25" });
    if (filters.status) q.set("status", filters.status);
    if (filters.batch) q.set("batch", filters.batch);
    const cursor = cursors[cursors.length - 1];
    if (cursor) q.set("cursor", cursor);
    const page = await api("GET", `/v1/jobs?${q}`);
    // Counts read up to 10,000 jobs: re-read when the page changed, else every 10 s.
    const signature = page.items.map((job) => job.id + job.status).join();
    if (!counted || withCounts || signature !== lastSignature) {
      counted = await api("GET", `/v1/job-counts?${query({})}`);
    }
    lastSignature = signature;
    replace(problems);
    const total = STATUSES.reduce((sum, s) => sum + counted.counts[s], 0);
    replace(counts,
      h("a", { href: "#/jobs", class: "badge" }, `all ${total}${counted.complete ? "" : "+"}`),
      STATUSES.map((s) => h("a", { href: `#/jobs?status=${s}`, "data-count": s },
        badge(`${s}`), ` ${counted.counts[s]}`)),
      h("div", { class: "bar-wrap" }, countsBar(counted.counts, total)));
    replace(table, h("table", { id: "jobs" },
      h("thead", {}, h("tr", {}, h("th", {}, "Job"), h("th", {}, "Type"), h("th", {}, "Status"),
        h("th", {}, "Progress"), h("th", { class: "hide-narrow" }, "Created"))),
      h("tbody", {}, page.items.map((job) => h("tr", { "data-job": job.id },
        h("td", {}, h("a", { href: `#/jobs/${job.id}` }, h("code", {}, job.id))),
        h("td", {}, job.type), h("td", {}, badge(job.status)),
        h("td", {}, progressBar(job.progress.fraction, `progress of ${job.id}`)),
        h("td", { class: "hide-narrow" }, when(job.created_at)))))),
      page.items.length ? null : h("p", { class: "muted", id: "no-jobs" }, "No jobs match."));
    replace(pager,
      h("button", { class: "secondary", type: "button", disabled: cursors.length === 1,
        onclick: () => { cursors.pop(); draw(); } }, "← Newer"),
      h("button", { class: "secondary", type: "button", id: "older", disabled: !page.next_cursor,
        onclick: () => { cursors.push(page.next_cursor); draw(); } }, "Older →"));
    document.body.dataset.jobsRendered = String(performance.now());
  }

  replace(main,
    h("h1", {}, "Jobs"),
    h("form", { class: "row card", onsubmit: (e) => { e.preventDefault(); go({ batch: batchInput.value.trim() }); } },
      select("f-status", "Status", { "": "any status", ...Object.fromEntries(STATUSES.map((s) => [s, s])) }, filters.status),
      typeSelect,
      h("label", { for: "f-batch" }, "Batch", batchInput),
      select("f-window", "Created", WINDOWS, filters.window),
      h("button", { type: "submit", class: "secondary" }, "Filter")),
    counts, problems, table, pager);
  // Live: the newest page redraws itself; an older page stays put while it is read.
  return every(2000, async () => {
    try {
      if (cursors.length === 1) await draw(ticks++ % 5 === 0);
    } catch (error) { replace(problems, errorBox(error)); }
  });
}
