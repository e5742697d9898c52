// The console's shell: signs in (an API key, or a portal link's one-time token), draws the
// navigation for what the credential may see, and routes #/view/... to a view module.
import { api, saveSession, session, signOut } from "/ui/api.js";
import { h, replace } from "/ui/ui.js";

const VIEWS = {
  jobs: { label: "Jobs", module: "/ui/views/jobs.js", scopes: ["operator", "admin", "standard", "portal"] },
  batches: { label: "Batches", module: "/ui/views/batches.js", scopes: ["operator", "admin", "standard", "portal"] },
  schedules: { label: "Schedules", module: "/ui/views/schedules.js", scopes: ["operator", "admin", "standard", "portal"] },
  review: { label: "Review", module: "/ui/views/review.js", scopes: ["operator", "admin", "standard", "portal"] },
  endpoints: { label: "Endpoints", module: "/ui/views/endpoints.js", scopes: ["operator", "admin", "standard", "portal", "portal-endpoints"] },
  system: { label: "System", module: "/ui/views/system.js", scopes: ["operator", "admin"] },
};

let stopView = null;

function firstViewFor(scope) {
  return Object.keys(VIEWS).find((name) => VIEWS[name].scopes.includes(scope)) || "endpoints";
}

async function exchangePortalToken(token) {
  // The token works once: take it out of the address bar and history at once.
  history.replaceState(null, "", location.pathname + location.search + "#/");
  const main = document.getElementById("main");
  try {
    const portal = await api("POST", "/v1/portal-sessions", { token }, { auth: false });
    const scope = portal.scope === "endpoints" ? "portal-endpoints" : "portal";
    saveSession({ key: portal.session, tenant: portal.tenant, scope, channel: portal.channel || null, expires_at: portal.expires_at });
    location.hash = `#/${firstViewFor(scope)}`;
  } catch (error) {
    signOut();
    replace(main, h("div", { class: "card" },
      h("h1", {}, "This link cannot be used"),
      h("p", { class: "error", role: "alert", id: "portal-error" }, error.message),
      h("p", { class: "muted" }, "Portal links work once and expire. Ask for a new one.")));
    return false;
  }
  return true;
}

function drawNav(current) {
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  const signed = session();
  if (!signed) { replace(nav); replace(who); return; }
  replace(nav, Object.entries(VIEWS)
    .filter(([, view]) => view.scopes.includes(signed.scope))
    .map(([name, view]) => h("a", { href: `#/${name}`, "aria-current": name === current ? "page" : null }, view.label)));
  replace(who,
    h("span", {}, `${signed.tenant} · ${signed.scope}`),
    h("button", { class: "secondary", type: "button", onclick: () => { signOut(); location.hash = "#/signin"; } }, "Sign out"));
}

async function route() {
  if (stopView) { stopView(); stopView = null; }
  const main = document.getElementById("main");
  const hash = location.hash || "#/";
  if (hash.startsWith("#token=")) {
    if (!(await exchangePortalToken(decodeURIComponent(hash.slice(7))))) { drawNav(null); return; }
    return;  // the hash change routes again
  }
  const [path, query = ""] = hash.slice(2).split("?");
  const [name, ...rest] = path.split("/");
  const signed = session();
  if (!signed || name === "signin") {
    drawNav(null);
    const view = await import("/ui/views/signin.js");
    stopView = view.render(main);
    return;
  }
  const chosen = VIEWS[name] && VIEWS[name].scopes.includes(signed.scope) ? name : firstViewFor(signed.scope);
  if (chosen !== name) { location.hash = `#/${chosen}`; return; }
  drawNav(chosen);
  const view = await import(VIEWS[chosen].module);
  replace(main);
  stopView = (await view.render(main, rest, new URLSearchParams(query))) || null;
  main.focus({ preventScroll: true });
}

export async function signIn(key) {
  saveSession({ key, tenant: "", scope: "standard" });
  const me = await api("GET", "/v1/whoami");
  saveSession({ key, tenant: me.tenant, scope: me.scope });
  location.hash = `#/${firstViewFor(me.scope)}`;
}

window.addEventListener("hashchange", route);
route();
