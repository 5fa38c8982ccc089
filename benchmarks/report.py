"""The terminal table (rich) and the Markdown report, both from the results document.

A driving bundle's accuracy column is the max abs error vs the source model; a perception bundle's
columns are what its builds were gated by: mIoU and drivable IoU (segmentation) or F1 at IoU 0.5
and the matched boxes' IoU (detection), vs the source on the bundle's reference frames.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchmarks.machine import short

_STYLE = {"ok": "green", "skipped": "yellow", "not_built": "yellow", "failed": "bold red"}
COLUMNS = ("format", "status", "size MB", "error", "p50 ms", "p99 ms", "FPS", "RSS MB", "loop p99 ms", "loop FPS")


def _f(v: Any, fmt: str = ".2f") -> str:
    return "-" if v is None else format(v, fmt)


# perception task -> (column, figure) pairs that replace the "error" column
TASK_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "segmentation": (("mIoU", "miou_segmentation"), ("drivable IoU", "drivable_iou")),
    "detection": (("F1@0.5", "f1_50_detection"), ("box IoU", "mean_iou")),
}


def task_of(results: dict[str, Any]) -> str | None:
    """``segmentation`` or ``detection`` when the builds' accuracy holds task figures, else None."""
    for b in results.get("builds", []):
        task = (b.get("accuracy") or {}).get("task") or {}
        for meaning in TASK_COLUMNS:
            if meaning in task:
                return meaning
    return None


def columns(task: str | None = None) -> tuple[str, ...]:
    """:data:`COLUMNS`, the "error" column replaced by ``task``'s figures for a perception bundle."""
    if task not in TASK_COLUMNS:
        return COLUMNS
    i = COLUMNS.index("error")
    return (*COLUMNS[:i], *(c for c, _ in TASK_COLUMNS[task]), *COLUMNS[i + 1 :])


def row(b: dict[str, Any], task: str | None = None) -> list[str]:
    """One build's cells, in :func:`columns` order (shared by the table and the Markdown)."""
    lat, acc, loop = b.get("latency_ms") or {}, b.get("accuracy") or {}, b.get("loop") or {}
    loop_fps = "-"
    if loop.get("fps") is not None:
        # "!": faster than bare, which a loop cannot be; why (noise, load) is printed below the table
        loop_fps = f"{loop['fps']:.0f} (x{loop['fps_ratio']:.2f}{' !' if loop.get('consistency') else ''})"
    elif loop.get("error"):
        loop_fps = "failed"
    if task in TASK_COLUMNS:
        figures = (acc.get("task") or {}).get(task) or {}
        accuracy = [_f(figures.get(k), ".4f") for _, k in TASK_COLUMNS[task]]
    else:
        accuracy = [_f(acc.get("max_abs"), ".1e")]
    return [
        b["format"], b["status"], _f(b.get("size_mb")), *accuracy, _f(lat.get("p50"), ".3f"),
        _f(lat.get("p99"), ".3f"), _f(b.get("fps"), ".0f"), _f(b.get("peak_rss_mb"), ".0f"),
        _f((loop.get("camera_to_command_ms") or {}).get("p99"), ".3f"), loop_fps,
    ]


def title(results: dict[str, Any]) -> str:
    """``name vN — rc-benchmark``."""
    m = results["model"]
    return f"{m['name']} v{m['version']} — rc-benchmark"


def render_table(results: dict[str, Any], console: Console | None = None) -> None:
    """The terminal table of every build, its reasons and the method line."""
    console = console or Console()
    table = Table(title=title(results), title_justify="left")
    task = task_of(results)
    for col in columns(task):
        table.add_column(col, justify="left" if col in ("format", "status") else "right")
    for b in results["builds"]:
        cells = row(b, task)
        cells[1] = f"[{_STYLE.get(b['status'], '')}]{cells[1]}[/]"
        table.add_row(*cells)
    console.print(table)
    for b in results["builds"]:
        if b.get("reason"):
            console.print(f"  [yellow]{b['format']}[/]: {escape(b['reason'])}", highlight=False)
        if (b.get("loop") or {}).get("error"):
            console.print(f"  [red]{b['format']} loop[/]: {escape(b['loop']['error'])}", highlight=False)
        if (b.get("loop") or {}).get("consistency"):
            console.print(f"  [yellow]{b['format']} loop ![/]: {escape(b['loop']['consistency'])}", highlight=False,
                          soft_wrap=True)
    s = results["settings"]
    loop = (f"; loop = the runtime's loop on a video driving the car simulator ({s['loop'].get('link', '-')}): "
            "camera-to-command p99 and FPS (x bare FPS)") if s["loop"].get("enabled") else ""
    what = {"segmentation": "mIoU / drivable IoU of the class maps", "detection": "F1 at IoU 0.5 / matched box IoU"}
    console.print(
        f"machine: {escape(short(results['machine']))}; medians over {s['repeats']} repeat(s), builds interleaved; "
        f"{what.get(task or '', 'error = max abs')} vs the source model on {_ref_count(results)} reference frames{loop}",
        highlight=False,
    )
    for note in results.get("notes", []):
        console.print(f"[dim]note: {escape(note)}[/]", highlight=False)


def _interval(ci: dict[str, float] | None, fmt: str) -> str:
    return f" [{format(ci['lo'], fmt)}, {format(ci['hi'], fmt)}]" if ci else ""


def _ref_count(results: dict[str, Any]) -> str:
    n = next((b["accuracy"]["samples"] for b in results["builds"] if b.get("accuracy")), None)
    return str(n) if n else "no"


def _task_section(acc: list[dict[str, Any]], task: str | None) -> list[str]:
    """The perception figures per build (Markdown), empty for a driving bundle."""
    keys: tuple[str, ...]
    if task == "segmentation":
        keys = ("pixel_acc_segmentation", "miou_segmentation", "drivable_iou", "drivable_iou_min_frame")
        head = ["format", "pixel agreement", "mIoU", "drivable IoU", "worst frame drivable IoU", "frames"]
    elif task == "detection":
        keys = ("precision_50_detection", "recall_50_detection", "f1_50_detection", "mean_iou", "score_max_abs",
                "missed", "extra", "borderline_missed", "borderline_extra")
        head = ["format", "precision@0.5", "recall@0.5", "F1@0.5", "box IoU", "score err max", "missed", "extra",
                "borderline missed", "borderline extra", "frames"]
    else:
        return []
    rows = []
    for b in acc:
        f = ((b["accuracy"].get("task") or {}).get(task)) or {}
        rows.append([b["format"], *(_f(f.get(k), ".0f" if k in ("missed", "extra") or k.startswith("borderline")
                                       else ".4f") for k in keys), _f(f.get("frames"), ".0f")])
    title = {"segmentation": "class maps", "detection": "detections matched by IoU >= 0.5 per class"}[task]
    return ["## Task agreement with the source model (" + title + ", the source as ground truth)", "",
            *_md_table(head, rows)]


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return [*lines, ""]


def markdown(results: dict[str, Any], plot_file: str | None = "latency.png") -> str:
    """The Markdown report: summary table, latency, GPU time, accuracy (task agreement for
    perception bundles), end to end, gate, plot and notes."""
    m, mach, s = results["model"], results["machine"], results["settings"]
    ok = [b for b in results["builds"] if b["status"] == "ok"]
    out = [f"# {title(results)}", ""]
    out += [
        f"- model: `{m['name']}` version {m['version']} (run `{m.get('run_id')}`)",
        f"- bundle: `{results['bundle']['path']}` (manifest sha256 `{results['bundle']['sha256'][:16]}…`)",
        f"- machine: {short(mach)}; {mach.get('os')}; {mach.get('memory_gb')} GB; load average "
        f"{mach.get('loadavg_start')} at start, {mach.get('loadavg_end')} at end",
        "- toolchain: " + ", ".join(f"{k} {v}" for k, v in results["toolchain"].items()),
        f"- method: {s['repeats']} repeats interleaved across builds, each build in a fresh process; per repeat "
        f"{s['warmup']} warm-up calls, then batch-1 calls until >= {s['min_count']} calls and >= "
        f"{s['min_time_s']} s; figures are medians over repeats",
        f"- created: {results['created_at']}",
        "",
        "## Summary",
        "",
    ]
    task = task_of(results)
    out += _md_table(list(columns(task)), [row(b, task) for b in results["builds"]])
    reasons = [f"- `{b['format']}`: {b['reason']}" for b in results["builds"] if b.get("reason")]
    if reasons:
        out += ["Not measured:", "", *reasons, ""]
    if ok:
        out += ["## Latency per build (ms, batch 1)", ""]
        out += _md_table(
            ["format", "min", "mean", "p50", "p90", "p99", "max", "p99 per repeat", "FPS", "peak RSS MB", "load s"],
            [[b["format"], *(_f(b["latency_ms"][k], ".3f") for k in ("min", "mean", "p50", "p90", "p99", "max")),
              ", ".join(_f(v, ".3f") for v in b["latency_ms_per_repeat"]["p99"]), _f(b["fps"], ".0f"),
              _f(b.get("peak_rss_mb"), ".0f"), _f(b.get("load_s"), ".2f")] for b in ok],
        )
    gpu = [b for b in ok if b.get("gpu_ms")]
    if gpu:
        out += ["## TensorRT: GPU time (CUDA events, ms p50 / p99)", ""]
        out += _md_table(["format", "host->device", "compute", "device->host"],
                         [[b["format"], *(f"{_f(b['gpu_ms'][k]['p50'], '.3f')} / {_f(b['gpu_ms'][k]['p99'], '.3f')}"
                                          for k in ("h2d", "compute", "d2h"))] for b in gpu])
    acc = [b for b in ok if b.get("accuracy")]
    if acc:
        out += ["## Accuracy vs the source model (abs error on the bundle's reference frames)", ""]
        rows = [[b["format"], name, f"{e['mean_abs']:.2e}", f"{e['max_abs']:.2e}", str(b["accuracy"]["samples"])]
                for b in acc for name, e in b["accuracy"]["per_output"].items()]
        out += _md_table(["format", "output", "mean abs", "max abs", "frames"], rows)
    out += _task_section(acc, task)
    loops = [b for b in ok if (b.get("loop") or {}).get("fps") is not None]
    if loops:
        out += [f"## End to end: the runtime's loop driving the car simulator ({s['loop'].get('link')})", ""]
        out += _md_table(
            ["format", "loop FPS", "bare FPS", "ratio", "overhead us/frame", "c2c p50", "c2c p90", "c2c p99",
             "c2c max", "bare p99", "margin ms", "drops"],
            [[b["format"], _f(lp["fps"], ".0f"), _f(lp["bare_fps"], ".0f"),
              _f(lp["fps_ratio"], ".3f") + _interval(lp.get("fps_ratio_interval"), ".3f"),
              _f(lp.get("per_frame_overhead_us"), ".0f") + _interval(lp.get("per_frame_overhead_us_interval"), ".0f"),
              *(_f(lp["camera_to_command_ms"][k], ".3f") for k in ("p50", "p90", "p99", "max")),
              _f(lp["bare_p99_ms"], ".3f"), _f(lp["latency_margin_ms"], ".3f"), str(lp["dropped"])]
             for b in loops for lp in [b["loop"]]],
        )
        out += [f"Camera-to-command (c2c) with the video paced at {s['loop'].get('latency_fps')} fps; "
                "ratio = loop FPS / bare FPS on the same frames, same backend and threads, back to back in each "
                "round (median over rounds, [95% bootstrap interval]); bare p99 = median of per-round p99s, as c2c.",
                ""]
        out += [f"- `{b['format']}` loop !: {b['loop']['consistency']}" for b in loops
                if b["loop"].get("consistency")] + [""]
    gate = results.get("gate")
    if gate:
        out += ["## Release gate", "", f"**{gate['verdict'].upper()}** "
                f"(baseline: {gate.get('baseline_label') or 'none'}; measured side by side in this run)", ""]
        out += [f"- UNDECIDED: {gate['advice']}"] if gate.get("advice") else []
        out += [f"- FAIL: {r}" for r in gate["reasons"]] + [f"- {n}" for n in gate["notes"]] + [""]
    if plot_file:
        out += ["## Latency distribution", "", f"![latency CDF]({plot_file})", ""]
    if results.get("notes"):
        out += ["## Notes", "", *(f"- {n}" for n in results["notes"]), ""]
    return "\n".join(out)
