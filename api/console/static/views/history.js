// History: GET /query with its filters and cursor paging. The filters live in the URL's
// fragment (#/history?q=...&status=failed), so a search can be bookmarked and Back works.

import { ApiError, get, query } from "../api.js";
import { append, badge, h, notice } from "../dom.js";
import { cost, count, duration, excerpt, percent, when } from "../format.js";

export const title = "History";

const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];
const SOURCES = ["task", "v1", "cli", "job"];
const FILTERS = ["q", "provider", "model", "strategy", "status", "source", "since", "until", "limit"];

// The cursors that led to the page on screen, per search: the way back to newer pages.
const trails = new Map();

export async function render(main, { params, signal, go }) {
  const filters = Object.fromEntries(FILTERS.map((name) => [name, params.get(name) ?? ""]));
  const cursor = params.get("cursor") || null;
  const search = query(filters);
  const trail = trails.get(search) ?? [];
  if (!cursor) trail.length = 0;
  else if (!trail.includes(cursor)) trail.push(cursor);
  trails.set(search, trail);

  const results = h("section", { "aria-labelledby": "results-title", "aria-busy": "true" });
  const form = filterForm(filters, go);
  main.append(
    h(
      "div",
      { class: "heading" },
      h("h1", {}, "History"),
      h("a", { href: "#/new", class: "button" }, "New task"),
    ),
    form,
    results,
  );

  const listing = get("/providers", { signal }).catch(() => null);
  try {
    const page = await get(`/query${query({ ...apiFilters(filters), cursor })}`, { signal });
    fillChoices(form, await listing, filters);
    results.removeAttribute("aria-busy");
    append(results, [
      h("h2", { id: "results-title", class: "visually-hidden" }, "Tasks"),
      page.data.length ? table(page.data) : notice("No task matches.", "info"),
      pager(search, trail, cursor, page.next_cursor),
    ]);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    results.removeAttribute("aria-busy");
    results.append(notice(error.explain()));
  }
}

/** The fragment's filters as GET /query wants them (times in ISO 8601, UTC). */
function apiFilters(filters) {
  const out = { ...filters };
  for (const name of ["since", "until"]) {
    if (out[name]) {
      const moment = new Date(out[name]); // datetime-local: the browser's local time
      out[name] = Number.isNaN(moment.getTime()) ? out[name] : moment.toISOString();
    }
  }
  return out;
}

function field(label, control, className = "") {
  return h("div", { class: `field ${className}` }, h("label", { for: control.id }, label), control);
}

function select(id, choices, value, anyLabel = "any") {
  const control = h("select", { id, name: id }, h("option", { value: "" }, anyLabel));
  for (const choice of choices) control.append(h("option", { value: choice }, choice));
  control.value = value;
  return control;
}

function filterForm(filters, go) {
  const text = (id, type = "text", extra = {}) =>
    h("input", { id, name: id, type, value: filters[id], ...extra });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter the history" },
    field("Search prompts and answers", text("q", "search", { placeholder: "text", maxlength: 500 }), "wide"),
    field("Provider", select("provider", [], filters.provider)),
    field("Model", text("model", "text", { maxlength: 200 })),
    field("Strategy", select("strategy", [], filters.strategy)),
    field("Status", select("status", STATUSES, filters.status)),
    field("Source", select("source", SOURCES, filters.source)),
    field("Created from", text("since", "datetime-local")),
    field("Created before", text("until", "datetime-local")),
    field("Per page", select("limit", ["20", "50", "100"], filters.limit, "20")),
    h(
      "div",
      { class: "field actions" },
      h("button", { type: "submit" }, "Search"),
      h("a", { href: "#/history", class: "button quiet" }, "Clear"),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = Object.fromEntries(FILTERS.map((name) => [name, form.elements[name].value.trim()]));
    go(`#/history${query(values)}`);
  });
  return form;
}

/** Provider and strategy choices from GET /providers (kept: a value typed in the URL). */
function fillChoices(form, listing, filters) {
  if (!listing) return;
  const fill = (name, choices) => {
    const control = form.elements[name];
    for (const choice of choices) control.append(h("option", { value: choice }, choice));
    if (filters[name] && !choices.includes(filters[name])) {
      control.append(h("option", { value: filters[name] }, filters[name]));
    }
    control.value = filters[name];
  };
  fill("provider", listing.data.map((provider) => provider.name));
  fill("strategy", listing.strategies);
}

const COLUMNS = ["Created", "Status", "Prompt", "Answer", "Strategy", "Provider", "Confidence", "Calls", "Tokens", "Cost", "Latency"];

function table(records) {
  return h(
    "table",
    { class: "grid history", id: "history-table" },
    h("thead", {}, h("tr", {}, COLUMNS.map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, records.map(row)),
  );
}

function row(record) {
  const answer = record.answer ?? (record.error ? `${record.error.code}: ${record.error.message ?? ""}` : null);
  return h(
    "tr",
    { dataset: { task: record.id } },
    h("td", { "data-label": "Created" }, h("time", { datetime: record.created_at }, when(record.created_at))),
    h("td", { "data-label": "Status" }, badge(record.status)),
    h(
      "td",
      { "data-label": "Prompt", class: "text" },
      h("a", { href: `#/task/${encodeURIComponent(record.id)}`, class: "prompt" }, excerpt(record.prompt, 90)),
    ),
    h("td", { "data-label": "Answer", class: "text" }, excerpt(answer, 90)),
    h("td", { "data-label": "Strategy" }, record.strategy),
    h("td", { "data-label": "Provider" }, [record.provider, record.model].filter(Boolean).join(" / ") || "–"),
    h("td", { "data-label": "Confidence", class: "num" }, percent(record.confidence)),
    h("td", { "data-label": "Calls", class: "num" }, count(record.calls)),
    h("td", { "data-label": "Tokens", class: "num" }, count(record.usage.total_tokens)),
    h("td", { "data-label": "Cost", class: "num" }, cost(record.cost_usd)),
    h("td", { "data-label": "Latency", class: "num" }, duration(record.latency_ms)),
  );
}

function pager(search, trail, cursor, next) {
  const base = search ? `${search}&` : "?";
  const links = [];
  if (cursor) {
    const newer = trail[trail.indexOf(cursor) - 1];
    links.push(h("a", { href: `#/history${search}`, class: "button quiet" }, "Newest"));
    if (newer) links.push(h("a", { href: `#/history${base}cursor=${encodeURIComponent(newer)}`, class: "button quiet", rel: "prev" }, "Newer"));
  }
  if (next) {
    links.push(h("a", { href: `#/history${base}cursor=${encodeURIComponent(next)}`, class: "button", rel: "next" }, "Older"));
  }
  return links.length ? h("nav", { class: "pager", "aria-label": "Pages" }, links) : null;
}

