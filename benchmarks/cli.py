"""``rc-benchmark``: measure every build of a bundle and the real loop, log to MLflow, gate a release.

    rc-benchmark --version 3                        # builds/$RC_MODEL_NAME/v3, results to MLflow
    rc-benchmark --bundle builds/rc_pilot/v3 --repeats 5 --no-log
    rc-benchmark --version 3 --gate --baseline-alias production --promote
    rc-benchmark --bundle builds/rc_pilot/v4 --gate --baseline-bundle builds/rc_pilot/v3 --rounds 20

With --gate the baseline bundle (the version holding --baseline-alias, or --baseline-bundle) is
measured in the same run as the candidate, interleaved in rounds, and every build's p50/p99/FPS
ratio is judged with its confidence interval.

Exit: 0 done (gate passed when --gate); 1 the gate failed, a build failed to run, or MLflow logging
failed (results are still written); 2 bad usage or input (nothing measured); 3 the gate is
undecided: the machine was too noisy to tell (more --rounds, or an idle machine).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("benchmarks")

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_UNDECIDED = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    """The ``rc-benchmark`` argument parser."""
    p = argparse.ArgumentParser(prog="rc-benchmark", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", help="registered model version; its bundle is <output>/<name>/v<version>")
    which.add_argument("--alias", help="registered model alias, e.g. production")
    which.add_argument("--bundle", type=Path, help="a bundle directory made by convert-model")
    a = p.add_argument
    a("--name", help="registered model name (else $RC_MODEL_NAME, else the config's [model] name)")
    a("--tracking-uri", help="MLflow tracking URI (else $MLFLOW_TRACKING_URI, the config, the local demo store)")
    a("--config", type=Path, help="repo config (default: ./rc-edge.toml when present)")
    a("--output", type=Path, help="bundle root as given to convert-model (default: the config's, else builds/)")
    a("--formats", help="only these builds, comma-separated (default: every build in the bundle)")
    m = p.add_argument_group("measurement")
    m.add_argument("--repeats", type=int, default=3, help="runs per build, interleaved; medians are reported (default 3)")
    m.add_argument("--warmup", type=int, default=50, help="warm-up calls per run (default 50)")
    m.add_argument("--min-count", type=int, default=500, help="timed calls per run, at least (default 500)")
    m.add_argument("--min-time", type=float, default=3.0, help="timed seconds per run, at least (default 3)")
    m.add_argument("--threads", type=int, help="CPU threads for ONNX Runtime / LiteRT (default: the library's)")
    m.add_argument("--trt-cache", help="TensorRT engine cache directory (default: the runtime's)")
    lp = p.add_argument_group("end to end (the runtime's loop driving the car simulator over a pty)")
    lp.add_argument("--no-loop", action="store_true", help="skip the end-to-end loop")
    lp.add_argument("--video", type=Path, help="video file to drive from (default: a synthetic drive)")
    lp.add_argument("--loop-frames", type=int, default=300, help="frames per throughput round (default 300)")
    lp.add_argument("--loop-rounds", type=int, default=2, help="bare/pipeline rounds per repeat (default 2)")
    lp.add_argument("--loop-latency-fps", type=float, default=100.0, help="camera rate of the latency run (default 100)")
    lp.add_argument("--loop-latency-frames", type=int, default=300, help="frames of the latency run (default 300)")
    lp.add_argument("--loop-link", default="sim://", help="where commands go (default sim://: car simulator on a pty)")
    o = p.add_argument_group("output")
    o.add_argument("--out", type=Path, help="results directory (default: bench-results/<name>-v<version>-<time>)")
    o.add_argument("--no-log", action="store_true", help="do not log to MLflow")
    o.add_argument("--allow-upgrade", action="store_true",
                   help="let MLflow migrate a store an older MLflow wrote when logging to it (else refused)")
    o.add_argument("--json", action="store_true", help="print the results JSON instead of the table")
    o.add_argument("--note", action="append", default=[], help="a note stored with the results; repeatable")
    g = p.add_argument_group("release gate")
    g.add_argument("--gate", action="store_true", help="judge the results; exit 1 with reasons when they fail")
    g.add_argument("--gate-config", type=Path, help="thresholds TOML (default: benchmarks/gate.toml)")
    g.add_argument("--baseline-alias", default="production",
                   help="measure side by side the bundle of the version holding this alias (default production)")
    g.add_argument("--baseline-bundle", type=Path, help="measure side by side this baseline bundle instead")
    g.add_argument("--rounds", type=int, help="side-by-side rounds (default: the gate config's, 10)")
    g.add_argument("--no-baseline", action="store_true", help="thresholds only (e.g. the first release)")
    # Gone: the gate no longer compares with a run from another time (it failed on noise).
    g.add_argument("--baseline-json", type=Path, help=argparse.SUPPRESS)
    g.add_argument("--allow-cross-machine", action="store_true", help=argparse.SUPPRESS)
    g.add_argument("--promote", action="store_true", help="on a pass, point --promote-alias at this version")
    g.add_argument("--promote-alias", default="candidate", help="alias set by --promote (default candidate)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="progress (-v) or debug (-vv) logging")
    p.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    return p


def _setup_logging(verbosity: int) -> None:
    from converter.report import setup_logging

    # Progress ("repeat 2/3: onnx") on stderr even by default: a full run takes minutes.
    setup_logging(verbosity, quiet=("mlflow", "alembic", "runtime", "matplotlib", "PIL"), progress="benchmarks")


def _check_args(args: argparse.Namespace) -> None:
    if args.promote and not args.gate:
        raise ValueError("--promote needs --gate (only a passed gate promotes)")
    if args.baseline_json or args.allow_cross_machine:
        raise ValueError("--baseline-json/--allow-cross-machine are gone: the gate measures the baseline in the "
                         "same run; pass --baseline-bundle DIR or --baseline-alias NAME")
    if args.baseline_bundle and args.no_baseline:
        raise ValueError("--baseline-bundle and --no-baseline contradict each other")
    if args.rounds is not None and args.rounds < 3:
        raise ValueError(f"--rounds {args.rounds}: at least 3 rounds are needed for an interval")
    if args.video is not None and not args.video.is_file():
        raise ValueError(f"--video {args.video}: no such file")


def _baseline(args: argparse.Namespace, ctx: Any) -> tuple[Any, Any, Any]:
    """(baseline Target or None, label, error), found before measuring so that a gate that cannot
    compare fails in seconds, not after minutes of measurement."""
    from benchmarks.locate import locate

    if not args.gate or args.no_baseline:
        return None, None, None
    if args.baseline_bundle:
        base = locate(bundle=args.baseline_bundle)  # a bad path is a usage error (exit 2)
        return base, f"{args.baseline_bundle} ({base.name} v{base.version})", None
    label = f"{ctx.target.name} @{args.baseline_alias}"
    try:
        base = locate(alias=args.baseline_alias, name=ctx.target.name, tracking_uri=ctx.target.tracking_uri,
                      output=args.output, config=args.config)
    except ValueError as e:  # no bundle for the alias's version: the message says how to make it
        return None, label, f"baseline {label}: {e}"
    except Exception as e:  # the alias does not exist, the registry cannot be read
        return None, label, (f"baseline {label}: {e}; set the alias, pass --baseline-bundle DIR, "
                             "or --no-baseline for a first release")
    return base, f"{base.name} v{base.version} @{args.baseline_alias}", None


def gate_exit(outcome: Any) -> int:
    """The exit status of a gate's verdict: 0 pass, 1 fail, 3 undecided."""
    return {"pass": EXIT_OK, "fail": EXIT_FAIL, "undecided": EXIT_UNDECIDED}[outcome.verdict]


def main(argv: list[str] | None = None) -> int:
    """``rc-benchmark`` (console script): benchmark a bundle's builds and the loop, log to MLflow and
    optionally gate/promote. Returns the exit status: 0 done (gate passed with ``--gate``), 1 the gate
    failed, a build failed to run or MLflow logging failed, 2 bad usage or input; an unexpected error
    is one line on stderr naming the stage (the traceback with ``--debug``).
    """
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    step: list[str] = ["preparing"]
    try:
        return _main(args, step)
    except Exception as e:  # the last line of defence: one line, never a traceback
        from converter.cli_guard import report_unexpected

        model = str(args.bundle) if args.bundle else f"{args.name or '$RC_MODEL_NAME'} v{args.version or '@' + str(args.alias)}"
        return report_unexpected("rc-benchmark", e, args.debug or args.verbose >= 1, step[0], model,
                                 args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))


def _main(args: argparse.Namespace, step: list[str]) -> int:
    """The benchmark; ``step[0]`` names the stage running, for the error line if one fails."""
    from rich.console import Console
    from rich.markup import escape

    from benchmarks import cli_steps as steps

    # Piped or captured output gets a fixed width wide enough for the table (rich assumes 80).
    console = Console() if sys.stdout.isatty() else Console(width=150)
    err = Console(stderr=True)
    try:
        _check_args(args)
        ctx = steps.prepare(args)
        base, label, base_error = _baseline(args, ctx)
        if base_error and args.gate:
            err.print(f"[bold red]gate failed[/] before measuring: {escape(base_error)}", highlight=False, soft_wrap=True)
            return EXIT_FAIL
        step[0] = "measuring"
        results, samples = steps.measure(args, ctx)
    except steps.USAGE_ERRORS as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print("[bold red]interrupted[/]: nothing was written")
        return 130
    step[0] = "measuring candidate and baseline side by side"
    try:
        outcome = steps.judge(args, ctx, results, base, label) if args.gate else None
    except KeyboardInterrupt:
        err.print("[bold red]interrupted[/]: nothing was written")
        return 130
    step[0] = "writing the results"
    out_dir, log_error = steps.write_and_log(args, ctx, results, samples)
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
    else:
        from benchmarks.report import render_table

        render_table(results, console)
        steps.print_gate(console, outcome)
        console.print(f"results: {out_dir}" + (f"  mlflow run: {results['mlflow_run_id']}"
                                               if results.get("mlflow_run_id") else ""), highlight=False)
    if log_error:
        err.print(f"[bold red]MLflow logging failed[/] (results are in {out_dir}): {escape(log_error)}",
                  highlight=False, soft_wrap=True)
    code = EXIT_OK
    if any(b["status"] == "failed" for b in results["builds"]) or log_error:
        code = EXIT_FAIL
    if outcome is not None and not outcome.passed:
        return code or gate_exit(outcome)  # a build that failed to run outranks "undecided"
    if outcome is not None and args.promote and code == EXIT_OK:
        step[0] = "promoting"
        code = steps.promote(args, ctx, console, err)
    return code


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    sys.exit(main())
