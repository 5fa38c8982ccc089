"""The release gate: may this version ship? Pure logic on the results document (see results.py)
and the side-by-side rounds of candidate and baseline (see side_by_side.py).

Verdict ``fail``, with one reason per problem, when

- a required build (``[builds] required``) is missing from the bundle or was not measured here;
- a build's accuracy error vs the source model exceeds its limit, or was not measured;
- measured side by side with the baseline bundle in the same run, a build's p50, p99 or FPS
  ratio has its whole confidence interval beyond the limit; or a build the baseline has could not
  be measured here.

``undecided`` when no check failed but some ratio's interval straddles its limit (the machine was
too noisy to tell: more rounds, or an idle machine); ``pass`` otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks import side_by_side as sbs
from benchmarks.gate_config import GateConfig
from benchmarks.results import build


@dataclass
class GateOutcome:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    baseline_label: str | None = None
    config: str = ""
    verdict: str = sbs.PASS  # pass | fail | undecided
    comparisons: list[dict[str, Any]] = field(default_factory=list)  # side_by_side.Figure.to_dict()
    advice: str = ""  # for an undecided verdict: how noisy, what to do

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_builds(cand: dict[str, Any], cfg: GateConfig, reasons: list[str]) -> None:
    for fmt in cfg.required:
        b = build(cand, fmt)
        if b is None:
            reasons.append(f"required build {fmt} is missing from the bundle (convert-model --formats {fmt})")
        elif b["status"] != "ok":
            reasons.append(f"required build {fmt} was not measured: {b['status']} ({b.get('reason') or 'no reason'})")


def check_accuracy(cand: dict[str, Any], cfg: GateConfig, reasons: list[str], notes: list[str]) -> None:
    for b in cand["builds"]:
        if b["status"] != "ok":
            continue
        limit = cfg.accuracy_limit(b["format"])
        acc = b.get("accuracy")
        if not acc:
            reasons.append(f"{b['format']}: accuracy was not measured (the bundle has no reference.npz; re-run convert-model)")
            continue
        task = acc.get("task")
        if task:  # a perception bundle: judged by task figures (the converter's gates), raw errors recorded
            from converter.task_parity import DEFAULT_GATES, task_failures

            fails = task_failures(task, DEFAULT_GATES.for_format(b["format"]), DEFAULT_GATES.level_of(b["format"]))
            reasons.extend(f"{b['format']}: {f}" for f in fails)
            if not fails:
                notes.append(f"{b['format']}: task agreement within the {DEFAULT_GATES.level_of(b['format'])} gate")
            continue
        over = [(n, v["max_abs"]) for n, v in acc["per_output"].items() if not v["max_abs"] <= limit]  # NaN fails
        if over:
            name, err = over[0]
            reasons.append(f"{b['format']}: max abs error {err:.3g} on {name} exceeds the limit {limit:g}")
        else:
            notes.append(f"{b['format']}: max abs error {acc['max_abs']:.3g} <= {limit:g}")


def check_side_by_side(
    cand: dict[str, Any], baseline_builds: list[str], rounds: sbs.Rounds, cfg: GateConfig,
    reasons: list[str], notes: list[str],
) -> list[sbs.Figure]:
    """Judge the side-by-side rounds; a build the baseline has that could not be compared is a reason
    (a note when ``baseline_builds_required`` is off)."""
    figures = sbs.judge_rounds(rounds, cfg.limits())
    compared = {f.build for f in figures}
    for fmt in baseline_builds:
        if fmt in compared:
            continue
        cb = build(cand, fmt)
        why = rounds.failed.get(fmt) or ("missing here" if cb is None else
                                         f"{cb['status']} here ({cb.get('reason') or 'no reason'})")
        (reasons if cfg.baseline_builds_required else notes).append(f"{fmt}: in the baseline but not compared: {why}")
    for f in figures:
        if f.verdict == sbs.FAIL:
            reasons.append(f"{f.text}: regression")
        else:
            notes.append(f"{f.text}: {f.verdict}")
    return figures


def evaluate(
    cand: dict[str, Any],
    rounds: sbs.Rounds | None,
    cfg: GateConfig,
    *,
    baseline_builds: list[str] | None = None,
    baseline_label: str | None = None,
    baseline_error: str | None = None,
) -> GateOutcome:
    """Judge ``cand`` against the thresholds and, when given, the side-by-side ``rounds`` with the
    baseline (whose bundle has ``baseline_builds``). ``baseline_error`` is why a wanted baseline
    could not be had (no alias, no bundle): a failure reason."""
    reasons: list[str] = []
    notes: list[str] = [f"thresholds: {cfg.source}"]
    check_builds(cand, cfg, reasons)
    check_accuracy(cand, cfg, reasons, notes)
    figures: list[sbs.Figure] = []
    if baseline_error:
        reasons.append(baseline_error)
    elif rounds is not None:
        figures = check_side_by_side(cand, baseline_builds or [], rounds, cfg, reasons, notes)
    else:
        notes.append("no baseline comparison (--no-baseline): thresholds only")
    verdict = sbs.FAIL if reasons else sbs.overall([f.verdict for f in figures])
    advice = ""
    if verdict == sbs.UNDECIDED and rounds is not None:
        advice = sbs.undecided_advice(figures, rounds.settings, cand.get("machine", {}))
    return GateOutcome(verdict == sbs.PASS, reasons, notes, baseline_label, cfg.source, verdict,
                       [f.to_dict() for f in figures], advice)
