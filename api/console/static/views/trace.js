// A trace as a timeline: one entry per provider call, in the order the engine made them.
// Each has its purpose, provider and model, duration, tokens, cost, the candidate answer it
// gave and its error. The bars sit on one time axis, at each call's start: a task watched live
// times its calls by the events' arrival; a past task's trace records each call's start
// (`started_ms`). Records made before starts were kept have durations only: their bars are
// scaled to the longest call.

import { h, s } from "../dom.js";
import { cost, count, duration } from "../format.js";

function bar(start, length, className) {
  return s(
    "svg",
    { class: "meter", viewBox: "0 0 100 10", preserveAspectRatio: "none", "aria-hidden": "true", focusable: "false" },
    s("rect", { class: "track", x: 0, y: 0, width: 100, height: 10 }),
    s("rect", {
      class: className,
      x: Math.min(start * 100, 99.5).toFixed(2),
      y: 0,
      width: Math.max(length * 100, 0.5).toFixed(2),
      height: 10,
    }),
  );
}

/** Call index -> its recorded start (ms from the task's start), when every step has one. */
function recordedStarts(steps) {
  if (!steps.length || !steps.every((step) => Number.isFinite(step.started_ms))) return null;
  return Object.fromEntries(steps.map((step) => [step.index, step.started_ms]));
}

/**
 * The timeline of `steps` (trace steps as the API gives them). `starts`: call index -> ms
 * from the task's start, as timed by a live view; without it, the starts the trace recorded
 * (`started_ms`) when every step has one. `running`: call indexes still out. `id`: the live
 * view names its own, so a running task's page can show it beside the recorded trace.
 */
export function timeline(steps, { starts: timed = null, running = [], now = null, id = "timeline" } = {}) {
  const starts = timed ?? recordedStarts(steps);
  // `now` is the live view's clock: recorded starts are on the driver's, so it is not theirs.
  const clock = timed ? now : null;
  const span = starts
    ? Math.max(
        clock ?? 0,
        ...steps.map((step) => (starts[step.index] ?? 0) + (step.latency_ms ?? 0)),
        1,
      )
    : Math.max(...steps.filter((step) => !running.includes(step.index)).map((step) => step.latency_ms ?? 0), 1);
  const list = h("ol", { class: "timeline", id });
  for (const step of steps) {
    const start = starts ? starts[step.index] ?? 0 : 0;
    const failed = Boolean(step.error);
    const out = running.includes(step.index);
    // A call still out, in an untimed replay: its start is unknown, so its bar is all "running".
    const length = out ? (starts ? Math.max((clock ?? start) - start, 0) : span) : (step.latency_ms ?? 0);
    const timing = out
      ? starts
        ? `started at ${duration(start)}, running`
        : "running"
      : starts
        ? `started at ${duration(start)}, took ${duration(step.latency_ms)}`
        : `took ${duration(step.latency_ms)}`;
    const usage = step.usage;
    list.append(
      h(
        "li",
        {
          class: `call${failed ? " failed" : ""}${out ? " running" : ""}`,
          dataset: starts ? { call: String(step.index), startMs: String(Math.round(start)) } : { call: String(step.index) },
        },
        h(
          "div",
          { class: "call-head" },
          h("span", { class: "call-purpose" }, `#${step.index + 1} ${step.purpose ?? "call"}`),
          h("span", { class: "muted" }, [step.provider, step.model].filter(Boolean).join(" / ")),
        ),
        bar(start / span, length / span, failed ? "fill error" : out ? "fill live" : "fill"),
        h(
          "div",
          { class: "call-facts" },
          h("span", {}, timing),
          usage ? h("span", {}, `${count(usage.prompt_tokens)} in / ${count(usage.completion_tokens)} out tokens`) : null,
          step.cost_usd !== undefined ? h("span", {}, `cost ${cost(step.cost_usd)}`) : null,
          step.candidate !== null && step.candidate !== undefined
            ? h("span", {}, "candidate: ", h("q", { class: "candidate" }, step.candidate))
            : null,
          step.note ? h("span", { class: "muted" }, step.note) : null,
        ),
        failed ? h("p", { class: "call-error" }, `${step.error}${step.error_message ? `: ${step.error_message}` : ""}`) : null,
        step.output ? h("details", {}, h("summary", {}, "Reply"), h("pre", { class: "prose" }, step.output)) : null,
      ),
    );
  }
  const scale = starts
    ? `Bars on one time axis of ${duration(span)}: where each call started and how long it took.`
    : steps.every((step) => running.includes(step.index))
      ? "Each call's duration shows once it has finished."
      : `Bars scaled to the longest call (${duration(span)}); this record has each call's duration, not its start.`;
  return h("figure", { class: "trace" }, h("figcaption", { class: "muted" }, scale), list);
}

/** refine's drafts, critiques and revisions, in order, each in full. */
export function refineSteps(steps) {
  const parts = steps.filter((step) => /^(draft|critique|revise)/.test(step.purpose ?? ""));
  return h(
    "ol",
    { class: "refine", id: "refine-steps" },
    parts.map((step) =>
      h(
        "li",
        { class: step.purpose.split(" ")[0] },
        h("h3", {}, step.purpose),
        step.error
          ? h("p", { class: "call-error" }, `${step.error}${step.error_message ? `: ${step.error_message}` : ""}`)
          : h("pre", { class: "prose" }, step.output ?? ""),
      ),
    ),
  );
}
