// New task: provider, model, strategy and its options from GET /providers; the result
// streamed live (POST /task with "stream": true), or the task started in the background
// ("background": true) and followed on its own page, where it can be cancelled.

import { ApiError, call, get, postStream } from "../api.js";
import { facts, h, notice, prose } from "../dom.js";
import { cost, count, duration, percent } from "../format.js";
import { LiveTask } from "./live.js";
import { breakdownTable, voteChart } from "./votes.js";

export const title = "New task";

// Option fields: [name, label, type ("int", "float"), the strategies it applies to (null: all)].
const OPTIONS = [
  ["samples", "Samples", "int", ["self_consistency"]],
  ["rounds", "Rounds of critique and revision", "int", ["refine"]],
  ["temperature", "Temperature", "float", null],
  ["max_tokens", "Max tokens per call", "int", null],
  ["max_calls", "Max calls", "int", null],
  ["max_total_tokens", "Max tokens for the task", "int", null],
  ["max_cost_usd", "Max cost (USD)", "float", null],
  ["deadline_ms", "Deadline (ms)", "int", null],
];

export async function render(main, { signal, go, params }) {
  main.append(h("h1", {}, "New task"));
  let listing;
  try {
    listing = await get("/providers", { signal });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    main.append(notice(error.explain()));
    return;
  }
  const result = h("div", { id: "result" });
  const form = taskForm(listing, params);
  main.append(form, result);
  let running = null; // the AbortController of a streamed task

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    try {
      body = requestBody(form, listing);
    } catch (problem) {
      result.replaceChildren(notice(problem.message));
      return;
    }
    const submit = form.querySelector("button[type=submit]");
    if (form.elements.mode.value === "background") {
      submit.disabled = true;
      try {
        const { data } = await call("/task", { method: "POST", body: { ...body, background: true }, signal });
        const id = data.id;
        go(`#/task/${encodeURIComponent(id)}`);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        result.replaceChildren(notice(error.explain()));
      } finally {
        submit.disabled = false;
      }
      return;
    }
    running = new AbortController();
    signal.addEventListener("abort", () => running?.abort(), { once: true });
    await stream(body, result, submit, running);
    running = null;
  });
}

function numberField(name, label, type) {
  const input = h("input", {
    id: `opt-${name}`,
    name,
    type: "number",
    inputmode: type === "int" ? "numeric" : "decimal",
    step: type === "int" ? "1" : "any",
    min: 0,
    placeholder: "default",
  });
  return h("div", { class: "field", dataset: { option: name } }, h("label", { for: input.id }, label), input);
}

function taskForm(listing, params) {
  const providers = h("select", { id: "provider", name: "provider" });
  for (const provider of listing.data) {
    const note = provider.status === "available" ? "" : ` (${provider.status.replace("_", " ")})`;
    providers.append(h("option", { value: provider.name }, `${provider.name}${note}`));
  }
  providers.value = params.get("provider") || listing.default_provider;
  const model = h("input", { id: "model", name: "model", type: "text", maxlength: 200, autocomplete: "off" });
  const strategies = h("select", { id: "strategy", name: "strategy" }, listing.strategies.map((name) => h("option", { value: name }, name)));
  strategies.value = params.get("strategy") || listing.default_strategy;

  const options = OPTIONS.map(([name, label, type]) => numberField(name, label, type));
  const earlyStop = h(
    "div",
    { class: "field check", dataset: { option: "early_stop" } },
    h("input", { id: "opt-early_stop", name: "early_stop", type: "checkbox" }),
    h("label", { for: "opt-early_stop" }, "Stop sampling once the vote is decided (early_stop)"),
  );
  const panel = h(
    "fieldset",
    { class: "panel", id: "panel", dataset: { option: "providers" } },
    h("legend", {}, "Vote across providers (optional): samples each answers"),
    listing.data.map((provider) =>
      h(
        "div",
        { class: "field" },
        h("label", { for: `seat-${provider.name}` }, provider.name),
        h("input", { id: `seat-${provider.name}`, name: `seat-${provider.name}`, type: "number", min: 0, step: 1, placeholder: "0", dataset: { seat: provider.name } }),
      ),
    ),
  );
  const modes = h(
    "fieldset",
    { class: "modes" },
    h("legend", {}, "Run"),
    h("label", {}, h("input", { type: "radio", name: "mode", value: "stream", checked: true }), " and watch it stream"),
    h("label", {}, h("input", { type: "radio", name: "mode", value: "background" }), " in the background (it keeps running if you leave)"),
  );
  const form = h(
    "form",
    { class: "card task-form", "aria-label": "New task" },
    h("div", { class: "field wide" }, h("label", { for: "prompt" }, "Prompt"), h("textarea", { id: "prompt", name: "prompt", rows: 5, required: true })),
    h(
      "div",
      { class: "row" },
      h("div", { class: "field" }, h("label", { for: "provider" }, "Provider"), providers),
      h("div", { class: "field" }, h("label", { for: "model" }, "Model"), model),
      h("div", { class: "field" }, h("label", { for: "strategy" }, "Strategy"), strategies),
    ),
    h("div", { class: "row options" }, options.slice(0, 2), earlyStop),
    panel,
    h(
      "details",
      {},
      h("summary", {}, "Budgets, temperature and system message"),
      h("div", { class: "row options" }, options.slice(2)),
      h("div", { class: "field wide" }, h("label", { for: "system" }, "System message"), h("textarea", { id: "system", name: "system", rows: 2 })),
    ),
    modes,
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Run task")),
    h("p", { class: "muted" }, "A streamed task stops if you leave this page or press Stop (the service cancels it); a background task runs on."),
  );

  const sync = () => {
    const chosen = listing.data.find((provider) => provider.name === providers.value);
    model.placeholder = chosen?.default_model ? `default: ${chosen.default_model}` : "the provider's default";
    for (const element of form.querySelectorAll("[data-option]")) {
      const applies = OPTIONS.find(([name]) => name === element.dataset.option)?.[3];
      const voting = ["early_stop", "providers"].includes(element.dataset.option);
      element.hidden = voting ? strategies.value !== "self_consistency" : Boolean(applies && !applies.includes(strategies.value));
    }
  };
  providers.addEventListener("change", sync);
  strategies.addEventListener("change", sync);
  sync();
  return form;
}

/** The form as a POST /task body: only what was filled in; the service's defaults do the rest. */
function requestBody(form, listing) {
  const values = form.elements;
  const body = { prompt: values.prompt.value, trace: true };
  if (!body.prompt.trim()) throw new Error("Write a prompt first.");
  body.provider = values.provider.value;
  if (values.model.value.trim()) body.model = values.model.value.trim();
  body.strategy = values.strategy.value;
  if (values.system.value.trim()) body.system = values.system.value;
  for (const [name, label, type, applies] of OPTIONS) {
    const raw = values[name].value.trim();
    if (!raw || (applies && !applies.includes(body.strategy))) continue;
    const number = Number(raw);
    if (!Number.isFinite(number) || (type === "int" && !Number.isInteger(number))) {
      throw new Error(`${label} must be ${type === "int" ? "a whole number" : "a number"}.`);
    }
    body[name] = number;
  }
  if (body.strategy === "self_consistency") {
    if (values.early_stop.checked) body.early_stop = true;
    const seats = listing.data
      .map((provider) => [provider.name, values[`seat-${provider.name}`].value.trim()])
      .filter(([, raw]) => raw && Number(raw) > 0)
      .map(([provider, raw]) => ({ provider, samples: Number(raw) }));
    if (seats.length) {
      body.providers = seats; // each seat answers its share: no single provider, no total
      delete body.provider;
      delete body.model;
      delete body.samples;
    }
  }
  return body;
}

async function stream(body, result, submit, running) {
  const live = new LiveTask({ timed: true });
  const stop = h("button", { type: "button", class: "danger", id: "stop-task" }, "Stop");
  stop.addEventListener("click", () => running.abort());
  result.replaceChildren(h("div", { class: "heading" }, h("h2", {}, "Result"), stop), live.element);
  submit.disabled = true;
  try {
    for await (const event of postStream("/task", { ...body, stream: true }, { signal: running.signal })) {
      const ended = live.handle(event);
      if (ended === "result") result.insertBefore(summary(event.data), live.element);
      if (ended) break;
    }
  } catch (error) {
    if (error.name === "AbortError") live.handle({ event: "error", data: { error: { message: "stopped: the service cancels the task", code: "cancelled" } } });
    else if (error instanceof ApiError) result.replaceChildren(notice(error.explain()));
    else live.handle({ event: "error", data: { error: { message: `the stream broke off (${error.message})`, code: "stream_error" } } });
  } finally {
    submit.disabled = false;
    stop.remove();
    if (live.id) {
      result.append(h("p", {}, h("a", { href: `#/task/${encodeURIComponent(live.id)}`, class: "button", id: "open-task" }, "Open the task and its trace")));
    }
  }
}

function summary(answer) {
  const parts = [
    h("h2", {}, "Answer"),
    prose(answer.answer, "prose answer"),
    facts([
      ["Provider", [answer.provider, answer.model].filter(Boolean).join(" / ")],
      ["Strategy", answer.strategy],
      ["Confidence", answer.confidence === null ? null : percent(answer.confidence)],
      ["Calls", count(answer.calls)],
      ["Tokens", count(answer.usage.total_tokens)],
      ["Cost", cost(answer.cost_usd)],
      ["Latency", duration(answer.latency_ms)],
      ["Budget", answer.budget_reason ? `stopped early: ${answer.budget_reason}` : null],
    ]),
  ];
  if (answer.votes && Object.keys(answer.votes).length) {
    parts.push(voteChart({ votes: answer.votes, confidence: answer.confidence, answer: answer.answer, sampling: answer.sampling }));
  }
  if (answer.votes_by_provider) {
    parts.push(breakdownTable(answer.votes_by_provider, { caption: "Votes by provider" }));
  }
  return h("section", { class: "card final", id: "final-answer" }, parts);
}
