"""The release gate: may this version ship? Pure logic on result documents (see results.py).

Fails, with one reason per problem, when

- a required build (``[builds] required``) is missing from the bundle or was not measured here;
- a build's accuracy error vs the source model exceeds its limit, or was not measured;
- compared with the baseline (the benchmark run of the version holding e.g. ``@production``):
  a build's p99 latency, or its loop's camera-to-command p99, regressed by more than the allowed
  percentage *and* more than the noise floor in ms; or a build the baseline measured is gone;
- the baseline was measured on another machine (unless ``allow_cross_machine``): timings from
  different hardware or TensorRT versions say nothing about a regression.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.gate_config import GateConfig
from benchmarks.machine import same_machine, short
from benchmarks.results import build


@dataclass
class GateOutcome:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    baseline_label: str | None = None
    config: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _regression(what: str, cand: float, base: float, max_pct: float, min_ms: float) -> tuple[bool, str]:
    delta = cand - base
    pct = 100.0 * delta / base if base > 0 else float("inf")
    text = f"{what} {cand:.3f} ms vs {base:.3f} ms baseline ({pct:+.1f}%, {delta:+.3f} ms; limit +{max_pct:g}% and +{min_ms:g} ms)"
    # Passing must be affirmed: a NaN figure fails (it compares False both ways).
    within = pct <= max_pct or delta <= min_ms
    return not within, text


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


def check_baseline(
    cand: dict[str, Any], base: dict[str, Any], cfg: GateConfig, allow_cross_machine: bool,
    reasons: list[str], notes: list[str],
) -> None:
    if not same_machine(cand["machine"], base["machine"]):
        where = f"baseline on {short(base['machine'])}, this run on {short(cand['machine'])}"
        if not allow_cross_machine:
            reasons.append(f"refusing to compare results from different machines ({where}); benchmark the "
                           "baseline on this machine, or pass --allow-cross-machine")
            return
        notes.append(f"comparing across machines as asked (--allow-cross-machine): {where}")
    for k in sorted(set(cand.get("toolchain", {})) | set(base.get("toolchain", {}))):
        a, b = base.get("toolchain", {}).get(k), cand.get("toolchain", {}).get(k)
        if a != b:
            notes.append(f"toolchain differs: {k} {a} (baseline) -> {b}")
    for bb in base["builds"]:
        if bb["status"] != "ok":
            continue
        fmt = bb["format"]
        cb = build(cand, fmt)
        if cb is None or cb["status"] != "ok":
            status = "missing" if cb is None else f"{cb['status']} ({cb.get('reason') or 'no reason'})"
            if cfg.baseline_builds_required:
                reasons.append(f"{fmt}: measured in the baseline but {status} here")
            else:
                notes.append(f"{fmt}: measured in the baseline but {status} here")
            continue
        failed, text = _regression(f"{fmt}: p99", cb["latency_ms"]["p99"], bb["latency_ms"]["p99"],
                                   cfg.max_p99_regression_pct, cfg.min_p99_regression_ms)
        (reasons if failed else notes).append(text)
        c_loop, b_loop = cb.get("loop") or {}, bb.get("loop") or {}
        if b_loop.get("camera_to_command_ms") and not c_loop.get("camera_to_command_ms"):
            text = f"{fmt}: the baseline measured the loop but this run did not (run without --no-loop)"
            (reasons if cfg.baseline_builds_required else notes).append(text)
        elif c_loop.get("camera_to_command_ms") and b_loop.get("camera_to_command_ms"):
            failed, text = _regression(
                f"{fmt}: loop camera-to-command p99", c_loop["camera_to_command_ms"]["p99"],
                b_loop["camera_to_command_ms"]["p99"], cfg.max_loop_p99_regression_pct, cfg.min_loop_p99_regression_ms,
            )
            (reasons if failed else notes).append(text)


def evaluate(
    cand: dict[str, Any],
    baseline: dict[str, Any] | None,
    cfg: GateConfig,
    *,
    allow_cross_machine: bool = False,
    baseline_label: str | None = None,
    baseline_error: str | None = None,
) -> GateOutcome:
    """Judge ``cand`` against the thresholds and, when given, ``baseline``. ``baseline_error`` is
    why a wanted baseline could not be had (no alias, no run on this machine): a failure reason."""
    reasons: list[str] = []
    notes: list[str] = [f"thresholds: {cfg.source}"]
    check_builds(cand, cfg, reasons)
    check_accuracy(cand, cfg, reasons, notes)
    if baseline_error:
        reasons.append(baseline_error)
    elif baseline is not None:
        check_baseline(cand, baseline, cfg, allow_cross_machine, reasons, notes)
    else:
        notes.append("no baseline comparison (--no-baseline): thresholds only")
    return GateOutcome(not reasons, reasons, notes, baseline_label, cfg.source)
