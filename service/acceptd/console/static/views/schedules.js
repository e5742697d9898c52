// Schedules: the tenant's recurring schedules (cron, next and last run), pause/resume, run
// now, delete, a form to create one (its job's input built from the type's schema); and
// `#/schedules/<id>`: one schedule with the jobs it submitted, newest first.
import { api } from "/ui/api.js";
import { schemaForm } from "/ui/schemaform.js";
import { badge, errorBox, every, h, json, progressBar, relative, replace, when } from "/ui/ui.js";

const OVERLAP = { allow: "allow: every tick runs", skip: "skip: not while its last job runs" };

function browserZone() {
  try { return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch { return "UTC"; }
}

function zones() {
  try { return Intl.supportedValuesOf("timeZone"); } catch { return []; }
}

// "in 4 min" ("due" once the time has come, until a worker submits the tick).
function soon(value) {
  return new Date(value) <= Date.now() ? "due now" : relative(value);
}

// The next run over its absolute time; "paused" while paused.
function nextRun(s) {
  if (s.paused) return badge("paused");
  return [h("span", {}, soon(s.next_run_at)), h("div", { class: "muted small hide-narrow" }, when(s.next_run_at))];
}

function lastRun(s) {
  if (!s.last_run_at) return h("span", { class: "muted" }, "never");
  return [s.last_job_id ? h("a", { href: `#/jobs/${s.last_job_id}`, title: s.last_job_id, "data-last-job": s.last_job_id }, relative(s.last_run_at))
    : h("span", {}, relative(s.last_run_at)), h("div", { class: "muted small hide-narrow" }, when(s.last_run_at))];
}

// Pause/Resume, Run now and Delete, for the table and the detail alike. `done(job?)` is
// called after each (with the job a run made); a refusal is shown in `failed` (which the
// polling leaves alone: it stays until the next action).
function actions(s, failed, done, { onDeleted } = {}) {
  async function act(call) {
    replace(failed);
    let made;
    try { made = await call(); } catch (error) { replace(failed, errorBox(error)); return; }
    try { await done(made); } catch (error) { replace(failed, errorBox(error)); }
  }
  return h("div", { class: "actions" },
    h("button", { class: "secondary", type: "button", "data-pause": s.id,
      onclick: () => act(async () => { await api("PATCH", `/v1/schedules/${s.id}`, { paused: !s.paused }); }) },
    s.paused ? "Resume" : "Pause"),
    h("button", { class: "secondary", type: "button", "data-run": s.id,
      onclick: () => act(() => api("POST", `/v1/schedules/${s.id}/trigger`)) }, "Run now"),
    h("button", { class: "danger", type: "button", "data-delete": s.id, onclick: () => {
      if (!confirm(`Delete the schedule ${s.cron} (${s.timezone}) of ${s.job.type}? The jobs it submitted stay.`)) return;
      act(async () => { await api("DELETE", `/v1/schedules/${s.id}`); if (onDeleted) onDeleted(); });
    } }, "Delete"));
}

function ranNotice(target, job) {
  replace(target, h("div", { class: "notice", role: "status" }, "Run now submitted ",
    h("a", { href: `#/jobs/${job.id}`, "data-ran": job.id }, h("code", {}, job.id)), " ", badge(job.status)));
}

export function render(main, rest) {
  if (rest.length && rest[0]) return renderOne(main, rest[0]);
  const cursors = [null];  // the cursor of each page seen: Newer goes back one
  const table = h("div", { class: "scroll" });
  const pager = h("div", { class: "row" });
  const problems = h("div", { "aria-live": "polite" });
  const failed = h("div", { "aria-live": "polite", id: "action-error" });
  const ran = h("div", { "aria-live": "polite", id: "ran" });

  async function draw() {
    const q = new URLSearchParams({ limit: "25" });
    const cursor = cursors[cursors.length - 1];
    if (cursor) q.set("cursor", cursor);
    const page = await api("GET", `/v1/schedules?${q}`);
    replace(problems);
    const after = async (job) => { if (job && job.id) ranNotice(ran, job); await draw(); };
    // `stacked`: on a phone each row becomes a small block (style.css), its actions below.
    replace(table, page.items.length ? h("table", { id: "schedules", class: "stacked" },
      h("thead", {}, h("tr", {}, h("th", {}, "Schedule"), h("th", {}, "Job"), h("th", {}, "Next run"),
        h("th", {}, "Last run"), h("th", { class: "hide-narrow" }, "Skipped"), h("th", {}, ""))),
      h("tbody", {}, page.items.map((s) => h("tr", { class: "link", "data-schedule": s.id,
        onclick: (e) => { if (!e.target.closest("a, button")) location.hash = `#/schedules/${s.id}`; } },
      h("td", {}, h("a", { href: `#/schedules/${s.id}`, title: s.id }, h("code", {}, s.cron)), h("div", { class: "muted small" }, s.timezone)),
      h("td", { "data-label": "Job" }, s.job.type),
      h("td", { "data-next": s.id, "data-label": "Next run" }, nextRun(s)),
      h("td", { "data-last": s.id, "data-label": "Last run" }, lastRun(s)),
      h("td", { class: "hide-narrow", "data-skipped": s.id }, s.skipped_ticks),
      h("td", { class: "wide" }, actions(s, failed, after))))))
      : h("p", { class: "muted", id: "no-schedules" }, cursors.length > 1 ? "No older schedules." : "No schedules yet."));
    replace(pager, cursors.length === 1 && !page.next_cursor ? null : [
      h("button", { class: "secondary", type: "button", disabled: cursors.length === 1,
        onclick: () => { cursors.pop(); draw(); } }, "← Newer"),
      h("button", { class: "secondary", type: "button", id: "older", disabled: !page.next_cursor,
        onclick: () => { cursors.push(page.next_cursor); draw(); } }, "Older →")]);
  }

  const form = newScheduleForm(async (made) => {
    replace(ran, h("div", { class: "notice", role: "status" }, "Created ",
      h("a", { href: `#/schedules/${made.id}` }, h("code", {}, made.id)),
      made.paused ? ", paused." : `: first run ${soon(made.next_run_at)}.`));
    cursors.splice(1);
    await draw();
  });
  replace(main, h("h1", {}, "Schedules"), problems, failed, ran, table, pager, form);
  // Live: the newest page redraws itself (and its times); an older page stays put.
  return every(2000, async () => {
    try { if (cursors.length === 1) await draw(); } catch (error) { replace(problems, errorBox(error)); }
  });
}

// The create form. The server's 422 names each bad field by JSON pointer (#/cron,
// #/job/input/delay_ms): each is shown next to its field, and all of them above the button.
function newScheduleForm(created) {
  const zoneList = h("datalist", { id: "sc-zones" }, zones().map((z) => h("option", { value: z })));
  const cron = h("input", { id: "sc-cron", required: true, placeholder: "*/15 * * * *", size: 18, spellcheck: "false", "aria-describedby": "sc-cron-help sc-cron-error" });
  const timezone = h("input", { id: "sc-timezone", required: true, value: browserZone(), list: "sc-zones", size: 22, spellcheck: "false", "aria-describedby": "sc-timezone-error" });
  const type = h("select", { id: "sc-type", "aria-describedby": "sc-type-error" });
  const overlap = h("select", { id: "sc-overlap", "aria-describedby": "sc-overlap-error" },
    Object.entries(OVERLAP).map(([v, text]) => h("option", { value: v }, text)));
  const paused = h("input", { id: "sc-paused", type: "checkbox" });
  const inputBox = h("div", { id: "sc-input" });
  const inputError = h("span", { class: "field-error", id: "sc-input-error", "aria-live": "polite" });
  const status = h("div", { "aria-live": "polite" });
  const error = (id) => h("span", { class: "field-error", id: `${id}-error`, "aria-live": "polite" });
  let types = new Map(), input = null;

  function showInput() {
    const chosen = types.get(type.value);
    if (!chosen) { replace(inputBox); input = null; return; }
    input = schemaForm(chosen.input_schema, "sc-input", { name: "input", title: "Input (JSON)" });
    const props = chosen.input_schema && chosen.input_schema.properties;
    replace(inputBox, chosen.description ? h("p", { class: "muted" }, chosen.description) : null,
      props && !Object.keys(props).length ? h("p", { class: "muted" }, "This type takes no input.") : input.element);
  }

  api("GET", "/v1/job-types").then((found) => {
    types = new Map(found.items.map((t) => [t.name, t]));
    replace(type, found.items.map((t) => h("option", { value: t.name }, t.name)));
    showInput();
  }).catch((problem) => replace(status, errorBox(problem)));
  type.addEventListener("change", showInput);

  function showServerErrors(problem) {
    for (const e of (problem && problem.errors) || []) {
      const parts = (e.pointer || "").replace(/^#\//, "").split("/").map((p) => p.replaceAll("~1", "/").replaceAll("~0", "~"));
      let id = null;
      if (parts[0] === "job" && parts[1] === "input") id = parts.length > 2 ? `sc-input-${parts[2]}` : "sc-input";
      else if (parts[0] === "job" && parts[1] === "type") id = "sc-type";
      else if (["cron", "timezone", "overlap"].includes(parts[0])) id = `sc-${parts[0]}`;
      const target = id && document.getElementById(`${id}-error`);
      if (target) target.textContent = target.textContent ? `${target.textContent}; ${e.detail}` : e.detail;
      else inputError.textContent = [inputError.textContent, `${e.field}: ${e.detail}`].filter(Boolean).join("; ");
    }
  }

  const element = h("form", { class: "card spaced", id: "sc-form", "aria-labelledby": "sc-new", novalidate: true, onsubmit: async (ev) => {
    ev.preventDefault();
    for (const span of element.querySelectorAll(".field-error")) span.textContent = "";
    replace(status);
    let value;
    try { value = input ? input.value() : {}; } catch (problem) {
      replace(status, h("div", { class: "error", role: "alert" }, problem.message));
      return;
    }
    const body = { cron: cron.value.trim(), timezone: timezone.value.trim(), overlap: overlap.value, paused: paused.checked,
      job: { type: type.value, input: value } };
    try {
      const made = await api("POST", "/v1/schedules", body);
      await created(made);
    } catch (problem) {
      showServerErrors(problem.problem);
      replace(status, errorBox(problem));
    }
  } },
  h("h2", { id: "sc-new" }, "New schedule"),
  h("div", { class: "row" },
    h("label", { for: "sc-cron" }, "Cron *", cron, error("sc-cron")),
    h("label", { for: "sc-timezone" }, "Time zone *", timezone, error("sc-timezone")),
    h("label", { for: "sc-type" }, "Job type *", type, error("sc-type")),
    h("label", { for: "sc-overlap" }, "Overlap", overlap, error("sc-overlap")),
    h("label", { for: "sc-paused", class: "check" }, paused, "Start paused")),
  h("p", { class: "muted small", id: "sc-cron-help" }, "Cron: minute hour day-of-month month day-of-week, in the time zone: ",
    h("code", {}, "0 9 * * 1-5"), " is 9:00 on weekdays, ", h("code", {}, "*/15 * * * *"), " every quarter hour."),
  zoneList,
  h("fieldset", {}, h("legend", {}, "Job input"), inputBox, inputError),
  h("div", { class: "actions" }, h("button", { type: "submit", id: "sc-create" }, "Create schedule")),
  status);
  return element;
}

function renderOne(main, scheduleId) {
  const head = h("div", { class: "card", id: "schedule-head" });
  const body = h("div");
  const jobs = h("div", { class: "scroll", id: "schedule-jobs" });
  const pager = h("div", { class: "row" });
  const problems = h("div", { "aria-live": "polite" });
  const failed = h("div", { "aria-live": "polite", id: "action-error" });
  const ran = h("div", { "aria-live": "polite", id: "ran" });
  const cursors = [null];
  let deleted = false;

  function drawSchedule(s) {
    const local = browserZone();
    const there = (value) => (value && s.timezone !== local ? ` · ${when(value, s.timezone)} ${s.timezone}` : "");
    const after = async (job) => { if (job && job.id) ranNotice(ran, job); await refresh(); };
    replace(head,
      h("h1", {}, "Schedule ", h("code", {}, s.id), " ", badge(s.paused ? "paused" : "active")),
      h("div", { class: "kv" },
        h("span", { class: "muted" }, "cron"), h("span", {}, h("code", {}, s.cron), " in ", s.timezone),
        h("span", { class: "muted" }, "next run"), h("span", { id: "next-run" }, s.paused ? "paused" : `${soon(s.next_run_at)} · ${when(s.next_run_at)}${there(s.next_run_at)}`),
        h("span", { class: "muted" }, "last run"), h("span", { id: "last-run" }, s.last_run_at ? `${relative(s.last_run_at)} · ${when(s.last_run_at)}` : "never"),
        h("span", { class: "muted" }, "last job"), s.last_job_id ? h("a", { href: `#/jobs/${s.last_job_id}` }, h("code", {}, s.last_job_id)) : h("span", {}, "none"),
        h("span", { class: "muted" }, "job type"), h("span", {}, s.job.type),
        h("span", { class: "muted" }, "priority"), h("span", {}, s.job.priority),
        h("span", { class: "muted" }, "overlap"), h("span", {}, OVERLAP[s.overlap] || s.overlap),
        h("span", { class: "muted" }, "skipped ticks"), h("span", { id: "skipped" }, s.skipped_ticks),
        s.job.callback_url ? [h("span", { class: "muted" }, "callback"), h("code", {}, s.job.callback_url)] : null,
        h("span", { class: "muted" }, "created"), h("span", {}, when(s.created_at)),
        h("span", { class: "muted" }, "updated"), h("span", {}, when(s.updated_at))),
      actions(s, failed, after, { onDeleted: () => { deleted = true; location.hash = "#/schedules"; } }));
    replace(body, h("h2", {}, "Job input"), json(s.job.input),
      Object.keys(s.job.metadata || {}).length ? [h("h2", {}, "Job metadata"), json(s.job.metadata)] : null);
  }

  async function drawJobs() {
    const q = new URLSearchParams({ schedule: scheduleId, limit: "20" });
    const cursor = cursors[cursors.length - 1];
    if (cursor) q.set("cursor", cursor);
    const page = await api("GET", `/v1/jobs?${q}`);
    replace(jobs, page.items.length ? h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Job"), h("th", {}, "Status"), h("th", { class: "hide-narrow" }, "Progress"), h("th", {}, "Created"))),
      h("tbody", {}, page.items.map((job) => h("tr", { "data-job": job.id },
        h("td", {}, h("a", { href: `#/jobs/${job.id}` }, h("code", {}, job.id))), h("td", {}, badge(job.status)),
        h("td", { class: "hide-narrow" }, progressBar(job.progress.fraction, `progress of ${job.id}`)),
        h("td", {}, relative(job.created_at), h("div", { class: "muted small" }, when(job.created_at)))))))
      : h("p", { class: "muted", id: "no-jobs" }, "No jobs yet: the first comes at its next run, or with Run now."));
    replace(pager, cursors.length === 1 && !page.next_cursor ? null : [
      h("button", { class: "secondary", type: "button", disabled: cursors.length === 1,
        onclick: () => { cursors.pop(); drawJobs(); } }, "← Newer"),
      h("button", { class: "secondary", type: "button", id: "older", disabled: !page.next_cursor,
        onclick: () => { cursors.push(page.next_cursor); drawJobs(); } }, "Older →")]);
  }

  async function refresh() {
    if (deleted) return;
    drawSchedule(await api("GET", `/v1/schedules/${scheduleId}`));
    if (cursors.length === 1) await drawJobs();
    replace(problems);
  }

  replace(main, h("p", {}, h("a", { href: "#/schedules" }, "← Schedules")), problems, failed, ran, head,
    h("h2", {}, "Recent jobs"), jobs, pager, body);
  return every(2000, async () => {
    try { await refresh(); } catch (error) { replace(problems, errorBox(error)); }
  });
}
