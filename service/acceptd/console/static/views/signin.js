import { signIn } from "/ui/app.js";
import { errorBox, h, replace } from "/ui/ui.js";

export function render(main) {
  const key = h("input", { id: "api-key", type: "password", autocomplete: "off", required: true, placeholder: "acc_…", size: 40 });
  const problems = h("div", { "aria-live": "polite" });
  const form = h("form", {
    class: "card", "aria-labelledby": "signin-title",
    onsubmit: async (event) => {
      event.preventDefault();
      try { await signIn(key.value.trim()); } catch (error) { replace(problems, errorBox(error)); }
    },
  },
  h("h1", { id: "signin-title" }, "Sign in"),
  h("p", { class: "muted" }, "Your API key stays in this tab only (session storage), is sent as a header, and is forgotten when the tab closes."),
  h("div", { class: "row" }, h("label", { for: "api-key" }, "API key", key), h("button", { type: "submit", id: "signin" }, "Sign in")),
  problems);
  replace(main, form);
  key.focus();
}
