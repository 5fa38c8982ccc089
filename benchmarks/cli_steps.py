"""The steps ``rc-benchmark`` runs, kept apart from argument parsing (benchmarks/cli.py)."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape

from benchmarks.builds import Settings, plan_builds
from benchmarks.e2e import LoopSettings
from benchmarks.gate import GateOutcome, evaluate
from benchmarks.gate_config import GateConfig, load_gate_config
from benchmarks.locate import Target, locate
from benchmarks.machine import describe_machine
from converter.errors import ConverterError
from converter.registry import Registry
from converter.tracking_store import open_store

log = logging.getLogger(__name__)

# Bad usage or input: one line, exit 2, nothing measured. (BundleError, LocateError,
# GateConfigError and ResultsError are ValueErrors; registry and config errors ConverterErrors.)
USAGE_ERRORS: tuple[type[Exception], ...] = (ConverterError, ValueError, FileNotFoundError)


@dataclass
class Context:
    target: Target
    machine: dict[str, Any]
    settings: Settings
    loop: LoopSettings
    only: list[str] | None
    gate_config: GateConfig | None
    registry: Callable[[], Registry]


def prepare(args: argparse.Namespace) -> Context:
    """Find the bundle, read the gate config, check the settings: every usage error surfaces here."""
    target = locate(bundle=args.bundle, version=args.version, alias=args.alias, name=args.name,
                    tracking_uri=args.tracking_uri, output=args.output, config=args.config)
    only = [f.strip() for f in args.formats.split(",") if f.strip()] if args.formats else None
    plan_builds(target.manifest, only)  # validates --formats
    settings = Settings(args.repeats, args.warmup, args.min_count, args.min_time, args.threads, args.trt_cache)
    loop = LoopSettings(not args.no_loop, args.loop_frames, args.loop_rounds, args.loop_latency_fps,
                        args.loop_latency_frames, args.loop_link)
    gate_config = load_gate_config(args.gate_config) if args.gate else None
    writes = not args.no_log or args.promote
    if writes:  # an older store is refused before minutes of measuring, not after (converter.tracking_store)
        open_store(target.tracking_uri, write=True, allow_upgrade=args.allow_upgrade)
    registry = functools.cache(lambda: Registry(target.tracking_uri, write=writes, allow_upgrade=args.allow_upgrade))
    return Context(target, describe_machine(), settings, loop, only, gate_config, registry)


def measure(args: argparse.Namespace, ctx: Context) -> tuple[dict[str, Any], dict[str, list[np.ndarray]]]:
    from benchmarks.runner import run_benchmark

    return run_benchmark(ctx.target.bundle, ctx.target.manifest, ctx.machine, ctx.settings, ctx.loop,
                         ctx.only, args.video, args.note)


def judge(args: argparse.Namespace, ctx: Context, results: dict[str, Any], base: Target | None,
          label: str | None) -> GateOutcome:
    """The gate: the candidate's builds measured side by side with ``base``'s (when given), judged."""
    import tempfile

    from benchmarks.side_by_side import measure_rounds

    cfg = ctx.gate_config
    assert cfg is not None
    rounds, base_builds = None, None
    if base is not None:
        base_builds = [b.format for b in base.manifest.builds if ctx.only is None or b.format in ctx.only]
        ours = {b["format"] for b in results["builds"] if b["status"] == "ok"}
        both = [f for f in base_builds if f in ours]
        s = cfg.round_settings(args.rounds, ctx.settings.threads, ctx.settings.trt_cache_dir)
        log.info("side by side with %s: %d rounds of %s", label, s.rounds, ", ".join(both) or "no build")
        with tempfile.TemporaryDirectory(prefix="rc-gate-") as tmp:
            rounds = measure_rounds(ctx.target.bundle, base.bundle, both, s, Path(tmp))
    outcome = evaluate(results, rounds, cfg, baseline_builds=base_builds, baseline_label=label)
    results["gate"] = outcome.to_dict()
    return outcome


def default_out_dir(ctx: Context) -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("bench-results") / f"{ctx.target.name}-v{ctx.target.version}-{stamp}"


def write_and_log(
    args: argparse.Namespace, ctx: Context, results: dict[str, Any], samples: dict[str, list[np.ndarray]]
) -> tuple[Path, str | None]:
    """Write the files (atomically) and, unless --no-log, log them to a new MLflow run.
    Returns (results directory, MLflow error or None): a logging failure never loses the results."""
    from benchmarks.plot import plot_latency
    from benchmarks.report import markdown
    from benchmarks.results import write_outputs

    out_dir = args.out or default_out_dir(ctx)
    run_id, error = None, None
    if not args.no_log:
        from benchmarks.tracking import start_run

        try:
            run_id = start_run(ctx.registry(), results)
            results["mlflow_run_id"] = run_id
        except Exception as e:  # reported, results still written below
            error = f"{type(e).__name__}: {e}"
    files = write_outputs(out_dir, results, markdown(results),
                          samples, lambda path: plot_latency(path, results, samples))
    if run_id is not None:
        from benchmarks.tracking import log_run

        try:
            log_run(ctx.registry(), results, files.values(), run_id)
        except Exception as e:  # reported; the run is marked FAILED by log_run
            error = f"{type(e).__name__}: {e}"
    return out_dir, error


def print_gate(console: Console, outcome: GateOutcome | None) -> None:
    if outcome is None:
        return
    head = {"pass": "[bold green]gate passed[/]", "fail": "[bold red]gate failed[/]",
            "undecided": "[bold yellow]gate undecided[/]"}[outcome.verdict]
    console.print(f"{head} (baseline: {escape(outcome.baseline_label or 'none')})", highlight=False)
    if outcome.advice:
        console.print(f"  [yellow]UNDECIDED[/] {escape(outcome.advice)}", highlight=False, soft_wrap=True)
    for r in outcome.reasons:
        console.print(f"  [red]FAIL[/] {escape(r)}", highlight=False, soft_wrap=True)
    for n in outcome.notes:
        console.print(f"  [dim]{escape(n)}[/]", highlight=False, soft_wrap=True)


def promote(args: argparse.Namespace, ctx: Context, console: Console, err: Console) -> int:
    from benchmarks.tracking import promote as set_alias

    name, version = ctx.target.name, ctx.target.version
    try:
        set_alias(ctx.registry(), name, version, args.promote_alias)
    except Exception as e:
        err.print(f"[bold red]could not set @{escape(args.promote_alias)}[/]: {escape(str(e))}", highlight=False)
        return 1
    console.print(f"promoted: {name} v{version} is now @{args.promote_alias}", highlight=False)
    return 0
