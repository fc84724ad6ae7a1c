// A task as it runs, drawn from its events (a streamed POST /task, or GET /task/{id}/events):
// a progress bar of calls done out of planned, the calls as a live timeline, the running
// vote, and the answer's text as it streams.

import { h, notice, prose } from "../dom.js";
import { percent } from "../format.js";
import { timeline } from "./trace.js";
import { voteChart } from "./votes.js";

export class LiveTask {
  /**
   * `timed`: the events arrive as they happen (a stream), so their arrival times are the
   * calls' start times; a replayed event log is not timed.
   */
  constructor({ timed }) {
    this.timed = timed;
    this.origin = performance.now();
    this.steps = new Map(); // call index -> step (what is known of it so far)
    this.starts = {};
    this.running = new Set();
    this.done = 0;
    this.planned = 0;
    this.progress = h("progress", { id: "task-progress", max: 1, value: 0, "aria-label": "Calls done" });
    this.progressText = h("span", { class: "progress-text", id: "progress-text" }, "waiting for the first call…");
    this.status = h("p", { class: "live-status", role: "status" }, "Starting…");
    this.votes = h("div", { class: "live-votes" });
    this.answer = prose("", "prose live-answer");
    this.answer.id = "live-answer";
    this.answerBox = h("section", { hidden: true }, h("h2", {}, "Answer, as it streams"), this.answer);
    this.calls = h("div", { class: "live-calls" });
    this.element = h(
      "section",
      { class: "live card", "aria-label": "Live progress" },
      this.status,
      h("div", { class: "progress-row" }, this.progress, this.progressText),
      this.votes,
      this.answerBox,
      h("h2", {}, "Calls"),
      this.calls,
    );
    this.timer = null;
  }

  now() {
    return performance.now() - this.origin;
  }

  /** Feeds one event; returns "result" or "error" when the task ended. */
  handle({ event, data }) {
    switch (event) {
      case "task":
        this.id = data.id;
        this.status.textContent = `Task ${data.id} accepted (${data.strategy}, ${data.provider ?? "default provider"}).`;
        break;
      case "status":
        this.status.textContent =
          data.status === "running"
            ? `Running (attempt ${data.attempt ?? 1}).`
            : `Queued${data.reason ? ` again: ${data.reason}` : ""}${data.retry_in ? `, retry in ${Math.round(data.retry_in)} s` : ""}.`;
        break;
      case "call.started":
        this.steps.set(data.call, { index: data.call, purpose: data.purpose, provider: data.provider, model: data.model });
        this.starts[data.call] = this.now();
        this.running.add(data.call);
        this.planned = Math.max(this.planned, data.planned ?? 0);
        this.status.textContent = `Running: ${data.purpose}…`;
        this.tick();
        break;
      case "call.finished":
        this.steps.set(data.call, { ...this.steps.get(data.call), ...data, index: data.call });
        this.running.delete(data.call);
        this.done = Math.max(this.done, data.done ?? this.done + 1);
        this.planned = Math.max(this.planned, data.planned ?? 0);
        break;
      case "vote":
        this.votes.replaceChildren(
          h("h2", {}, `Running vote: ${data.cast} of ${data.planned} cast, leader ${data.leader ?? "–"} (${percent(data.share)})`),
          voteChart({ votes: data.votes, confidence: data.share, answer: data.leader, id: "live-vote-chart" }),
        );
        break;
      case "delta":
        this.answerBox.hidden = false;
        this.answer.append(document.createTextNode(data.text));
        break;
      case "result":
        this.done = Math.max(this.done, data.calls ?? this.done);
        this.ended = data.sampling
          ? `, sampling stopped (${data.sampling.stopped}) after ${data.sampling.drawn} of at most ${data.sampling.maximum} samples`
          : "";
        this.status.textContent = "Done.";
        this.answerBox.hidden = true; // the answer is shown in full with the result
        this.stop();
        return "result";
      case "error":
        this.status.replaceChildren(notice(`${data.error?.message ?? "failed"} (${data.error?.code ?? "error"})`));
        this.stop();
        return "error";
      default:
        break;
    }
    this.draw();
    return null;
  }

  draw() {
    // Ended: the bar is full even when a vote stopped before its planned samples.
    const planned = this.ended !== undefined ? Math.max(this.done, 1) : Math.max(this.planned, this.done, 1);
    this.progress.max = planned;
    this.progress.value = this.ended !== undefined ? planned : this.done;
    this.progressText.textContent =
      this.ended !== undefined
        ? `${this.done} ${this.done === 1 ? "call" : "calls"} done${this.ended}`
        : `${this.done} of ${this.planned || "?"} calls done`;
    const steps = [...this.steps.values()].sort((a, b) => a.index - b.index);
    if (steps.length) {
      this.calls.replaceChildren(
        timeline(steps, {
          starts: this.timed ? this.starts : null,
          running: [...this.running],
          now: this.now(),
          id: "live-timeline",
        }),
      );
    }
  }

  /** Redraws while calls are out, so their bars grow. */
  tick() {
    if (this.timer || !this.timed) return;
    this.timer = setInterval(() => (this.running.size ? this.draw() : null), 250);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.running.clear();
    this.draw();
  }
}
