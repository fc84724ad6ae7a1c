// Sign in: the key is checked against the API (GET /providers) before it is kept, and kept in
// this tab's sessionStorage only: closing the tab forgets it.

import { ApiError, get, storeKey } from "../api.js";
import { h, notice } from "../dom.js";

export const title = "Sign in";

export async function render(main, { message, next, go }) {
  const input = h("input", {
    id: "api-key",
    name: "api-key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "api-key-help",
  });
  const status = h("div", { class: "form-status" });
  if (message) status.append(notice(message));
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in"),
    h("label", { for: "api-key" }, "API key"),
    input,
    h(
      "p",
      { id: "api-key-help", class: "muted" },
      "One of the service's API_KEYS. It is kept for this tab only and sent with every request; " +
        "the console shows nothing without it.",
    ),
    button,
    status,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    button.disabled = true;
    status.replaceChildren(notice("Checking the key…", "info"));
    try {
      await get("/providers", { key });
      storeKey(key);
      go(next || "#/history");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      status.replaceChildren(notice(error.explain()));
      input.select();
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
  main.append(form);
  input.focus();
}
