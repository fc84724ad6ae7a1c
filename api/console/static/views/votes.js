// A vote as a bar chart (self_consistency): one bar per answer, the winner marked, and, for a
// vote across providers, who voted for what. Bars are SVG rectangles sized by attribute: the
// Content-Security-Policy allows no inline style, and none is needed.

import { h, s } from "../dom.js";
import { count, percent } from "../format.js";

/** The answer the vote chose: the most votes; on a tie, the one the task answered with. */
export function winnerOf(votes, answer) {
  const entries = Object.entries(votes);
  const top = Math.max(...entries.map(([, n]) => n));
  const leaders = entries.filter(([, n]) => n === top).map(([key]) => key);
  if (leaders.length === 1) return leaders[0];
  const said = (answer ?? "").trim().toLowerCase();
  return leaders.find((key) => key.toLowerCase() === said) ?? null;
}

function bar(share, className) {
  return s(
    "svg",
    { class: "meter", viewBox: "0 0 100 10", preserveAspectRatio: "none", "aria-hidden": "true", focusable: "false" },
    s("rect", { class: "track", x: 0, y: 0, width: 100, height: 10 }),
    s("rect", { class: className, x: 0, y: 0, width: Math.max(share * 100, 0.5).toFixed(2), height: 10 }),
  );
}

/**
 * The chart: `votes` is answer -> votes (normalised answers, as the API gives them);
 * `confidence` the winner's share; `answer` the task's answer (to break a tie). `id` is the
 * page's to give: the new-task page shows the running vote and the final one at once.
 */
export function voteChart({ votes, confidence, answer, sampling, id = "vote-chart" }) {
  const entries = Object.entries(votes).sort((a, b) => b[1] - a[1]);
  const cast = entries.reduce((sum, [, n]) => sum + n, 0);
  const winner = winnerOf(votes, answer);
  const items = entries.map(([key, n]) =>
    h(
      "li",
      { class: key === winner ? "winner" : "", dataset: { answer: key, votes: String(n) } },
      h("span", { class: "vote-label" }, key === "" ? "(empty answer)" : key),
      bar(cast ? n / cast : 0, key === winner ? "fill winner" : "fill"),
      h(
        "span",
        { class: "vote-count" },
        `${count(n)} ${n === 1 ? "vote" : "votes"} (${percent(cast ? n / cast : null)})`,
        key === winner ? h("strong", { class: "tag" }, "winner") : null,
      ),
    ),
  );
  const caption = [`${count(cast)} votes cast`];
  if (confidence !== null && confidence !== undefined) caption.push(`confidence ${percent(confidence)}`);
  if (sampling) {
    caption.push(
      `${sampling.drawn} of at most ${sampling.maximum} samples in ${sampling.waves} ` +
        `${sampling.waves === 1 ? "wave" : "waves"}, stopped: ${sampling.stopped}`,
    );
  }
  return h(
    "figure",
    { class: "votes", id },
    h("figcaption", {}, caption.join(" · ")),
    h("ol", { class: "vote-bars" }, items),
  );
}

/** Who voted for what: `breakdown` is seat ("provider/model") -> answer -> votes. */
export function breakdownTable(breakdown, { caption }) {
  // Columns: the answers with the most votes first, as in the chart.
  const totals = {};
  for (const row of Object.values(breakdown)) {
    for (const [answer, n] of Object.entries(row)) totals[answer] = (totals[answer] ?? 0) + n;
  }
  const answers = Object.keys(totals).sort((a, b) => totals[b] - totals[a] || a.localeCompare(b));
  return h(
    "table",
    { class: "grid breakdown", id: "vote-breakdown" },
    h("caption", {}, caption),
    h(
      "thead",
      {},
      h("tr", {}, h("th", { scope: "col" }, "Provider / model"), answers.map((a) => h("th", { scope: "col" }, a))),
    ),
    h(
      "tbody",
      {},
      Object.entries(breakdown).map(([seat, row]) =>
        h(
          "tr",
          { dataset: { seat } },
          h("th", { scope: "row" }, seat),
          answers.map((a) => h("td", { class: "num", "data-label": a }, count(row[a] ?? 0))),
        ),
      ),
    ),
  );
}

/**
 * A breakdown from a recorded trace: each sample's extracted candidate, by the seat that
 * answered it. The history keeps candidates as extracted, before the vote's normalisation,
 * so "1,000" and "1000" are separate columns here (the chart above counts them together).
 */
export function breakdownFromSteps(steps) {
  const breakdown = {};
  for (const step of steps) {
    if (step.error || step.candidate === null || step.candidate === undefined) continue;
    const seat = `${step.provider ?? "?"}/${step.model ?? "?"}`;
    const row = (breakdown[seat] ??= {});
    row[step.candidate] = (row[step.candidate] ?? 0) + 1;
  }
  return breakdown;
}
