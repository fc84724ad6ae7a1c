// One task (#/task/ID): prompt and answer, the numbers, the vote chart, the trace as a
// timeline, refine's drafts and critiques; a queued or running background task is followed
// live (GET /task/{id}/events) and can be cancelled.

import { ApiError, call, get, getStream } from "../api.js";
import { badge, facts, h, notice, prose } from "../dom.js";
import { cost, count, duration, percent, when } from "../format.js";
import { LiveTask } from "./live.js";
import { refineSteps, timeline } from "./trace.js";
import { breakdownFromSteps, breakdownTable, voteChart } from "./votes.js";

export const title = "Task";

const ACTIVE = new Set(["queued", "running"]);

export async function render(main, { id, signal, go }) {
  let record;
  try {
    record = await get(`/query/${encodeURIComponent(id ?? "")}`, { signal });
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    main.append(h("h1", {}, "Task"), notice(error.explain()), h("p", {}, h("a", { href: "#/history" }, "Back to the history")));
    return;
  }
  document.title = `Task ${record.id} · ReasoningAgent console`;
  main.append(header(record));
  if (ACTIVE.has(record.status)) main.append(await follow(record, { signal, go }));
  main.append(
    section("Prompt", record.system ? [h("h3", {}, "System"), prose(record.system), h("h3", {}, "User")] : null, prose(record.prompt, "prose prompt")),
  );
  if (record.answer !== null) main.append(section("Answer", prose(record.answer, "prose answer")));
  if (record.error) main.append(section("Error", notice(`${record.error.message ?? ""} (${record.error.code})`)));
  main.append(section("Numbers", numbers(record)));
  const steps = record.steps ?? [];
  if (record.votes && Object.keys(record.votes).length) {
    const parts = [voteChart({ votes: record.votes, confidence: record.confidence, answer: record.answer, sampling: record.sampling })];
    const breakdown = breakdownFromSteps(steps);
    if (Object.keys(breakdown).length > 1) {
      parts.push(breakdownTable(breakdown, { caption: "Each provider's answers, as extracted from its replies (before the vote's normalisation)" }));
    }
    main.append(section("Vote", parts));
  }
  if (record.strategy === "refine" && steps.length) main.append(section("Drafts and critiques", refineSteps(steps)));
  main.append(section(`Trace (${steps.length} ${steps.length === 1 ? "call" : "calls"})`, steps.length ? timeline(steps) : h("p", { class: "muted" }, "No call was recorded.")));
}

function section(name, ...content) {
  const slug = name.toLowerCase().replace(/[^a-z]+/g, "-").replace(/-+$/, "");
  return h("section", { class: "card", "aria-labelledby": `section-${slug}` }, h("h2", { id: `section-${slug}` }, name), content);
}

function header(record) {
  return h(
    "div",
    { class: "heading" },
    h("h1", {}, "Task ", h("code", { class: "task-id" }, record.id)),
    h("span", { id: "task-status" }, badge(record.status)),
    h("a", { href: "#/history", class: "button quiet" }, "History"),
  );
}

function numbers(record) {
  const sampling = record.sampling;
  return facts([
    ["Created", when(record.created_at)],
    ["Finished", record.finished_at ? when(record.finished_at) : null],
    ["Strategy", record.strategy],
    ["Provider", record.provider],
    ["Model", record.model],
    ["Providers used", record.providers_used?.join(", ")],
    ["Confidence", record.confidence === null ? null : percent(record.confidence)],
    ["Calls", count(record.calls)],
    ["Tokens", `${count(record.usage.total_tokens)} (${count(record.usage.prompt_tokens)} in, ${count(record.usage.completion_tokens)} out)`],
    ["Cost", cost(record.cost_usd)],
    ["Latency", duration(record.latency_ms)],
    ["Budget", record.budget_exhausted ? "exhausted: the budget stopped it early" : null],
    ["Sampling", sampling ? `${sampling.drawn} of ${sampling.maximum} in ${sampling.waves} waves, stopped: ${sampling.stopped} (posterior ${percent(sampling.posterior)})` : null],
    ["Source", record.source],
    ["Attempts", record.attempts ? count(record.attempts) : null],
    ["Options", Object.keys(record.params ?? {}).length ? JSON.stringify(record.params) : null],
  ]);
}

/** A queued or running task: its live progress and a Cancel button; the page redraws when it ends. */
async function follow(record, { signal, go }) {
  const live = new LiveTask({ timed: false });
  const cancel = h("button", { type: "button", class: "danger", id: "cancel-task" }, "Cancel task");
  const said = h("div", { class: "form-status" });
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      const { status, data } = await call(`/task/${encodeURIComponent(record.id)}/cancel`, { method: "POST", signal });
      said.replaceChildren(
        notice(status === 202 ? "Cancel requested: its worker stops it within about a second." : `Cancelled (${data.status}).`, "info"),
      );
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      said.replaceChildren(notice(error.explain()));
      cancel.disabled = false;
    }
  });
  const box = h("div", {}, h("div", { class: "heading" }, h("h2", {}, "Live"), cancel), said, live.element);
  (async () => {
    let last = null;
    for (let attempt = 0; attempt < 5 && !signal.aborted; attempt += 1) {
      try {
        for await (const event of getStream(`/task/${encodeURIComponent(record.id)}/events`, { signal, lastEventId: last })) {
          last = event.id ?? last;
          if (live.handle(event)) {
            go(location.hash); // ended: show the record as the history has it
            return;
          }
        }
      } catch (error) {
        if (error.name === "AbortError") return;
        said.replaceChildren(notice(error instanceof ApiError ? error.explain() : `Lost the event stream (${error.message}); reconnecting…`));
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  })();
  return box;
}
