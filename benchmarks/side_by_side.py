"""Candidate and baseline measured in the same run, interleaved, and judged with intervals.

A gate that compares a benchmark run with one from another time fails on noise: on a shared
machine the same build gave p50 8.1 ms in one run and 1.5 ms in the next. Here every round
measures each build of both bundles briefly, back to back (A B, then B A in the next round, the
builds in a rotated order), each in a fresh worker process (benchmarks/worker.py). Per build and
figure (p50, p99, FPS) the medians over rounds get a bootstrap interval, and so does the
candidate/baseline ratio (paired by round: a round's ratio cancels the load both had).

Verdict per figure: ``fail`` when the ratio's whole interval is beyond the limit (and the change
exceeds the noise floor in ms), ``pass`` when it is wholly within (or the worst case is within the
floor), ``undecided`` otherwise: the machine was too noisy to tell at the configured confidence.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks.builds import BuildPlan, Settings, run_worker
from benchmarks.stats import Interval, bootstrap_median, paired_ratio, rotate
from runtime import formats

log = logging.getLogger(__name__)

SIDES = ("candidate", "baseline")
FIGURES = ("p50", "p99", "fps")
PASS, FAIL, UNDECIDED = "pass", "fail", "undecided"


@dataclass(frozen=True)
class RoundSettings:
    rounds: int = 10
    warmup: int = 20
    min_count: int = 200
    min_time_s: float = 0.3
    confidence: float = 0.95
    seed: int = 0
    threads: int | None = None
    trt_cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.rounds < 3:
            raise ValueError(f"--rounds {self.rounds}: at least 3 rounds are needed for an interval")
        if self.min_count < 1 or self.warmup < 0 or self.min_time_s < 0:
            raise ValueError("round_min_count must be >= 1, warmup and round_min_time_s >= 0")


@dataclass
class Limits:
    """What a regression is, per figure: the ratio limit (x1.10: 10 % slower) and the floor in ms
    below which a latency change is scheduler noise (FPS has no floor)."""

    p50: tuple[float, float] = (10.0, 0.1)
    p99: tuple[float, float] = (10.0, 0.2)
    fps_pct: float = 10.0


@dataclass
class Figure:
    build: str
    figure: str
    candidate: Interval
    baseline: Interval
    ratio: Interval
    limit: float  # ratio limit: above it (latency) or below it (FPS) is a regression
    verdict: str
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"build": self.build, "figure": self.figure, "candidate": self.candidate.to_dict(),
                "baseline": self.baseline.to_dict(), "ratio": self.ratio.to_dict(), "limit": self.limit,
                "verdict": self.verdict, "text": self.text}


@dataclass
class Rounds:
    """Per side and build, one {p50, p99, fps} per round; ``failed``: build -> why it could not run."""

    settings: RoundSettings
    data: dict[str, dict[str, list[dict[str, float]]]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def measure_rounds(candidate: Path, baseline: Path, builds: list[str], s: RoundSettings, workdir: Path) -> Rounds:
    """Interleave short measurements of every build of both bundles over ``s.rounds`` rounds."""
    settings = Settings(1, s.warmup, s.min_count, s.min_time_s, s.threads, s.trt_cache_dir)
    bundles = {"candidate": candidate, "baseline": baseline}
    out = Rounds(s, {side: {b: [] for b in builds} for side in SIDES})
    for r in range(s.rounds):
        for fmt in rotate(builds, r):
            if fmt in out.failed:
                continue
            spec = formats.get(fmt)
            for side in SIDES if r % 2 == 0 else SIDES[::-1]:
                log.info("side by side round %d/%d: %s %s", r + 1, s.rounds, side, fmt)
                plan = BuildPlan(fmt, spec.runner, spec.precision)
                result, _ = run_worker(bundles[side], plan, settings, workdir, f"{side}.r{r}", accuracy=False)
                if result.get("status") != "ok":
                    out.failed[fmt] = f"{side} {result.get('status')}: {result.get('reason') or 'no reason'}"
                    break
                lat = result["latency_ms"]
                out.data[side][fmt].append({"p50": lat["p50"], "p99": lat["p99"], "fps": result["fps"]})
    return out


def judge_figure(build: str, figure: str, cand: list[float], base: list[float], limits: Limits,
                 s: RoundSettings) -> Figure:
    """One figure's intervals and verdict (see the module doc)."""
    c = bootstrap_median(cand, s.confidence, s.seed)
    b = bootstrap_median(base, s.confidence, s.seed)
    ratio = paired_ratio(cand, base, s.confidence, s.seed)
    conf = f"{100 * s.confidence:.4g}% CI over {ratio.n} rounds"
    if figure == "fps":
        limit = 1 - limits.fps_pct / 100
        fail, ok = ratio.hi < limit, ratio.lo >= limit
        unit, floor_text = "", ""
    else:
        pct, floor_ms = limits.p50 if figure == "p50" else limits.p99
        limit = 1 + pct / 100
        # the change in ms is judged on the same interval: its worst case within the floor passes
        fail = ratio.lo > limit and (ratio.lo - 1) * b.value > floor_ms
        ok = ratio.hi <= limit or (ratio.hi - 1) * b.value <= floor_ms
        unit, floor_text = " ms", f" and +{floor_ms:g} ms"
    if not all(math.isfinite(x) for x in (c.value, b.value, ratio.lo, ratio.hi)):
        fail, ok = True, False  # passing must be affirmed: a NaN or zero figure fails
    verdict = FAIL if fail else PASS if ok else UNDECIDED
    direction = "at least" if figure == "fps" else "at most"
    text = (f"{build}: {figure} {c.value:.3f}{unit} [{c.lo:.3f}, {c.hi:.3f}] vs baseline {b.value:.3f}{unit} "
            f"[{b.lo:.3f}, {b.hi:.3f}]: ratio x{ratio.value:.3f} [{ratio.lo:.3f}, {ratio.hi:.3f}] ({conf}); "
            f"allowed {direction} x{limit:.2f}{floor_text if figure != 'fps' else ''}")
    return Figure(build, figure, c, b, ratio, limit, verdict, text)


def judge_rounds(rounds: Rounds, limits: Limits) -> list[Figure]:
    """Every build's p50, p99 and FPS figures that both sides measured in every round.

    The configured confidence holds for the whole gate, not for each figure alone: with 9 figures
    each at 95 %, a copy of the same network would fail somewhere one run in four or so. Each
    figure's interval is widened (Bonferroni) to 1 - (1 - confidence) / figures."""
    done = [fmt for fmt, cand in rounds.data["candidate"].items()
            if fmt not in rounds.failed and cand and len(cand) == len(rounds.data["baseline"][fmt])]
    n = len(done) * len(FIGURES)
    s = replace(rounds.settings, confidence=1 - (1 - rounds.settings.confidence) / max(n, 1))
    figures = []
    for fmt in done:
        cand, base = rounds.data["candidate"][fmt], rounds.data["baseline"][fmt]
        for fig in FIGURES:
            figures.append(judge_figure(fmt, fig, [r[fig] for r in cand], [r[fig] for r in base], limits, s))
    return figures


def overall(verdicts: list[str]) -> str:
    """fail if any fails, else undecided if any is undecided, else pass."""
    return FAIL if FAIL in verdicts else UNDECIDED if UNDECIDED in verdicts else PASS


def undecided_advice(figures: list[Figure], s: RoundSettings, machine: dict[str, Any]) -> str:
    """How noisy the machine was and what to do, for an undecided gate."""
    undecided = [f for f in figures if f.verdict == UNDECIDED]
    worst = max(undecided, key=lambda f: f.ratio.hi - f.ratio.lo)
    loads = [*machine.get("loadavg_start", []), *machine.get("loadavg_end", [])]
    load = f"load average up to {max(loads):.2f} on {machine.get('logical_cores') or '?'} cores" if loads else \
        "load average unknown"
    which = ", ".join(f"{f.build} {f.figure}" for f in undecided)
    return (f"too noisy to tell ({which}): the ratio intervals straddle the limit; the widest, {worst.build} {worst.figure}, "
            f"spans x{worst.ratio.lo:.3f}..x{worst.ratio.hi:.3f} ({100 * (worst.ratio.hi - worst.ratio.lo):.0f} "
            f"points wide) with {load}; re-run with more rounds (--rounds {2 * s.rounds}) or on an idle machine")
