"""Adaptive self-consistency against fixed-n majority voting, on a seeded simulated provider.

    python bench/adaptive_bench.py [--trials 1000] [--seed 11] [--confidence 0.95]
                                   [--sweep] [--out bench/results/adaptive_sc]

For each per-sample accuracy p in {0.5, 0.6, 0.7, 0.8, 0.9}, two shapes of wrong answers
(`split`: uniform over 5 wrong answers; `concentrated`: always the same wrong answer, the hard
case) and two maxima (16 and 40 samples), `--trials` tasks run through the engine's real
state machine (`agent_core.Run`, driven here without IO). Each trial draws one sequence of
answers and both modes read it in order (common random numbers): fixed-n votes over all of
it, adaptive stops when its rule says so. Reported: accuracy of both, the difference in
points, mean samples drawn (and as a share of the maximum), mean waves (the latency cost).
`--sweep` repeats the table for several confidence levels, to choose the default.
Results go to `--out`.json and `--out`.svg (a plot).
A benchmark, not a test: it prints numbers and asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from agent_core import Answer, Completion, Run, Task

ACCURACIES = (0.5, 0.6, 0.7, 0.8, 0.9)
SHAPES = ("split", "concentrated")
MAXIMA = (16, 40)
RIGHT = "42"
WRONG = ("41", "43", "24", "7", "420")


@dataclass(frozen=True)
class Row:
    p: float
    shape: str
    maximum: int
    confidence: float
    fixed_accuracy: float
    adaptive_accuracy: float
    delta_points: float
    mean_samples: float
    sample_share: float
    mean_waves: float


def answers(rng: random.Random, p: float, shape: str, n: int) -> list[str]:
    """One trial's sequence of sample answers."""
    out = []
    for _ in range(n):
        if rng.random() < p:
            out.append(RIGHT)
        else:
            out.append(WRONG[0] if shape == "concentrated" else rng.choice(WRONG))
    return out


def vote(sequence: list[str], maximum: int, early_stop: bool, confidence: float) -> Answer:
    """Runs one self_consistency task through the engine, answering its calls in order."""
    task = Task(
        "q",
        strategy="self_consistency",
        samples=maximum,
        temperature=1.0,
        early_stop=early_stop,
        stop_confidence=confidence,
    )
    run = Run(task)
    served = 0
    while True:
        step = run.poll()
        if isinstance(step, Answer):
            return step
        for call in step:
            run.complete(call.id, Completion(f"Final answer: {sequence[served]}", "sim"), 1.0)
            served += 1


def measure(trials: int, seed: int, confidence: float) -> list[Row]:
    rows = []
    for maximum in MAXIMA:
        for shape in SHAPES:
            for p in ACCURACIES:
                rng = random.Random(f"{seed}-{p}-{shape}-{maximum}")
                fixed_right = adaptive_right = drawn = waves = 0
                for _ in range(trials):
                    sequence = answers(rng, p, shape, maximum)
                    fixed = vote(sequence, maximum, False, confidence)
                    adaptive = vote(sequence, maximum, True, confidence)
                    fixed_right += fixed.text == RIGHT
                    adaptive_right += adaptive.text == RIGHT
                    assert adaptive.sampling is not None
                    drawn += adaptive.sampling.drawn
                    waves += adaptive.sampling.waves
                fixed_accuracy = fixed_right / trials
                adaptive_accuracy = adaptive_right / trials
                rows.append(
                    Row(
                        p=p,
                        shape=shape,
                        maximum=maximum,
                        confidence=confidence,
                        fixed_accuracy=round(fixed_accuracy, 4),
                        adaptive_accuracy=round(adaptive_accuracy, 4),
                        delta_points=round(100 * (adaptive_accuracy - fixed_accuracy), 2),
                        mean_samples=round(drawn / trials, 2),
                        sample_share=round(drawn / trials / maximum, 4),
                        mean_waves=round(waves / trials, 2),
                    )
                )
    return rows


def meets_target(rows: list[Row]) -> bool:
    """The issue's target: within 2 points of fixed-n at every p; at most 40 % of the samples
    on average for p >= 0.8 and at most 55 % at p = 0.7, in both shapes."""
    for row in rows:
        if row.delta_points < -2.0:
            return False
        if row.p >= 0.8 and row.sample_share > 0.40:
            return False
        if row.p == 0.7 and row.sample_share > 0.55:
            return False
    return True


def table(rows: list[Row]) -> str:
    lines = [
        "| max | wrong answers | p | fixed-n accuracy | adaptive accuracy | Δ points "
        "| mean samples | share of max | mean waves |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.maximum} | {r.shape} | {r.p} | {r.fixed_accuracy:.3f} | "
            f"{r.adaptive_accuracy:.3f} | {r.delta_points:+.1f} | {r.mean_samples:.1f} | "
            f"{r.sample_share:.0%} | {r.mean_waves:.2f} |"
        )
    return "\n".join(lines)


def plot(rows: list[Row], path: Path) -> None:
    """Two panels as SVG: accuracy (adaptive, with fixed-n faint) and the share of samples
    drawn, against p. Drawn by hand: a plotting stack (matplotlib and numpy, tens of MB) is
    not worth installing in CI for one chart of lines."""
    width, height, pad = 460, 300, 48
    colors = {
        ("split", 16): "#1f77b4",
        ("concentrated", 16): "#d62728",
        ("split", 40): "#6baed6",
        ("concentrated", 40): "#fc9272",
    }

    def panel(
        x0: int,
        title: str,
        low: float,
        high: float,
        value: str,
        faint: str | None,
        lines: tuple[float, ...] = (),
    ) -> list[str]:
        def xy(p: float, v: float) -> tuple[float, float]:
            x = x0 + pad + (p - 0.5) / 0.4 * (width - 2 * pad)
            y = pad + (high - v) / (high - low) * (height - 2 * pad)
            return x, y

        out = [
            f'<text x="{x0 + width / 2}" y="20" text-anchor="middle">{title}</text>',
            f'<rect x="{x0 + pad}" y="{pad}" width="{width - 2 * pad}" '
            f'height="{height - 2 * pad}" fill="none" stroke="#999"/>',
        ]
        for p in ACCURACIES:
            x, _ = xy(p, low)
            out.append(f'<text x="{x}" y="{height - pad + 16}" text-anchor="middle">{p}</text>')
        for tick in (low, (low + high) / 2, high):
            _, y = xy(0.5, tick)
            out.append(f'<text x="{x0 + pad - 6}" y="{y + 4}" text-anchor="end">{tick:g}</text>')
        for line in lines:
            (xa, y), (xb, _) = xy(0.5, line), xy(0.9, line)
            out.append(
                f'<line x1="{xa}" y1="{y}" x2="{xb}" y2="{y}" stroke="#aaa" '
                'stroke-dasharray="4 3"/>'
            )
        for (shape, maximum), color in colors.items():
            chosen = [r for r in rows if r.shape == shape and r.maximum == maximum]
            for field, opacity in ((faint, 0.35), (value, 1.0)):
                if field is None:
                    continue
                points = " ".join(
                    "{:.1f},{:.1f}".format(*xy(r.p, float(getattr(r, field)))) for r in chosen
                )
                out.append(
                    f'<polyline points="{points}" fill="none" stroke="{color}" '
                    f'stroke-width="2" opacity="{opacity}"/>'
                )
        return out

    body = panel(
        0,
        "accuracy: adaptive (bold) vs fixed-n (faint)",
        0.4,
        1.0,
        "adaptive_accuracy",
        "fixed_accuracy",
    )
    body += panel(
        width, "samples drawn, share of the maximum", 0.0, 1.0, "sample_share", None, (0.40, 0.55)
    )
    legend_y = height + 14
    for i, ((shape, maximum), color) in enumerate(colors.items()):
        x = 60 + i * 220
        body.append(f'<rect x="{x}" y="{legend_y - 9}" width="14" height="4" fill="{color}"/>')
        body.append(f'<text x="{x + 20}" y="{legend_y}">max {maximum}, {shape}</text>')
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * width}" height="{height + 30}" '
        'font-family="sans-serif" font-size="12">'
        f'<rect width="100%" height="100%" fill="white"/>{"".join(body)}</svg>\n'
    )
    path.write_text(svg)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--confidence", type=float, default=None, help="default: the engine's")
    parser.add_argument("--sweep", action="store_true", help="several confidence levels")
    parser.add_argument("--out", default="bench/results/adaptive_sc")
    args = parser.parse_args()

    confidence = args.confidence if args.confidence is not None else Task("q").stop_confidence
    levels = (0.93, 0.94, 0.95, 0.96, 0.97) if args.sweep else (confidence,)
    results = {}
    for level in levels:
        started = time.perf_counter()
        rows = measure(args.trials, args.seed, level)
        print(
            f"\n## confidence {level} ({args.trials} trials per row, seed {args.seed}, "
            f"{time.perf_counter() - started:.1f} s): target met: {meets_target(rows)}\n"
        )
        print(table(rows))
        results[str(level)] = {"rows": [asdict(r) for r in rows], "target_met": meets_target(rows)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(
        json.dumps({"trials": args.trials, "seed": args.seed, "results": results}, indent=1) + "\n"
    )
    if not args.sweep:
        plot(measure_rows(results, confidence), out.with_suffix(".svg"))
        print(f"\nresults: {out.with_suffix('.json')}, plot: {out.with_suffix('.svg')}")


def measure_rows(results: dict[str, dict[str, object]], confidence: float) -> list[Row]:
    raw = results[str(confidence)]["rows"]
    assert isinstance(raw, list)
    return [Row(**r) for r in raw]


if __name__ == "__main__":
    main()
