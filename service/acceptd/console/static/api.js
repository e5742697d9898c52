// Calls the acceptd API with the signed-in credential. The credential lives in this tab's
// sessionStorage only: sent as a header, never put in a URL or a cookie.
const STORE = "acceptd.console";

export function session() {
  try { return JSON.parse(sessionStorage.getItem(STORE) || "null"); } catch { return null; }
}
export function saveSession(value) { sessionStorage.setItem(STORE, JSON.stringify(value)); }
export function signOut() { sessionStorage.removeItem(STORE); }

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export async function api(method, path, body, { auth = true } = {}) {
  const headers = { Accept: "application/json" };
  const current = session();
  if (auth && current) headers.Authorization = `Bearer ${current.key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const answer = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await answer.text();
  const parsed = text ? JSON.parse(text) : null;
  if (answer.status === 401 && auth) {
    signOut();
    location.hash = "#/signin";
  }
  if (!answer.ok) throw new ApiError(answer.status, parsed || {});
  return parsed;
}

// A Server-Sent Events stream read with fetch (EventSource cannot send a header).
// Calls onEvent(type, data) for each event; returns a function that stops it.
export function stream(path, onEvent, onEnd) {
  const control = new AbortController();
  const current = session();
  (async () => {
    try {
      const answer = await fetch(path, {
        headers: { Authorization: `Bearer ${current.key}`, Accept: "text/event-stream" },
        signal: control.signal,
      });
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "", type = "", data = [];
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.search(/\r?\n/)) >= 0) {
          const line = buffer.slice(0, cut);
          buffer = buffer.slice(buffer[cut] === "\r" ? cut + 2 : cut + 1);
          if (line === "") {
            if (data.length) onEvent(type || "message", data.join("\n"));
            type = ""; data = [];
          } else if (!line.startsWith(":")) {
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            let val = colon < 0 ? "" : line.slice(colon + 1);
            if (val.startsWith(" ")) val = val.slice(1);
            if (field === "event") type = val;
            else if (field === "data") data.push(val);
          }
        }
      }
    } catch (error) {
      if (error.name === "AbortError") return;
    }
    if (onEnd) onEnd();
  })();
  return () => control.abort();
}
