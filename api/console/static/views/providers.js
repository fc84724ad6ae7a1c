// Providers: each registered provider's status, and why one cannot serve (GET /providers).

import { ApiError, get } from "../api.js";
import { badge, h, notice } from "../dom.js";

export const title = "Providers";

const STATUS_TEXT = {
  available: "available",
  missing_credentials: "missing credentials",
  disabled: "disabled",
  failed: "failed",
};

export async function render(main, { signal }) {
  const refresh = h("button", { type: "button", class: "quiet" }, "Refresh");
  const body = h("div", { "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  main.append(h("div", { class: "heading" }, h("h1", {}, "Providers"), refresh), body);

  async function load() {
    body.setAttribute("aria-busy", "true");
    try {
      const listing = await get("/providers", { signal });
      body.replaceChildren(table(listing));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      body.replaceChildren(notice(error.explain()));
    } finally {
      body.removeAttribute("aria-busy");
    }
  }
  refresh.addEventListener("click", load);
  await load();
}

function table(listing) {
  const rows = listing.data.map((provider) =>
    h(
      "tr",
      { dataset: { provider: provider.name } },
      h(
        "th",
        { scope: "row", "data-label": "Provider" },
        provider.name,
        provider.name === listing.default_provider ? h("span", { class: "tag" }, "default") : null,
      ),
      h("td", { "data-label": "Status" }, badge(provider.status, STATUS_TEXT[provider.status] ?? provider.status)),
      h("td", { "data-label": "Why" }, provider.reason ?? ""),
      h("td", { "data-label": "Default model" }, provider.default_model ?? "–"),
      h("td", { "data-label": "Type" }, provider.type),
      h("td", { "data-label": "Aliases" }, provider.aliases.join(", ")),
      h("td", { "data-label": "Plugin" }, provider.plugin ?? "–"),
    ),
  );
  return h(
    "div",
    {},
    h(
      "p",
      { class: "muted" },
      `Requests that name no provider go to ${listing.default_provider}; the default strategy is ` +
        `${listing.default_strategy} (of ${listing.strategies.join(", ")}).`,
    ),
    h(
      "table",
      { class: "grid", id: "providers-table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Provider", "Status", "Why", "Default model", "Type", "Aliases", "Plugin"].map((name) =>
            h("th", { scope: "col" }, name),
          ),
        ),
      ),
      h("tbody", {}, rows),
    ),
  );
}
