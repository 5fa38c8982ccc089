"""What the user sees: a live step line per stage (rich, on stderr) and the final table or JSON."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.table import Table

from converter.summary import Summary

log = logging.getLogger(__name__)

_STYLE = {"built": "green", "cached": "cyan", "skipped": "yellow", "failed": "bold red"}


def setup_logging(verbosity: int, quiet: tuple[str, ...] = (), progress: str | None = None) -> int:
    """Logging for the workstation CLIs: rich, on stderr (stdout carries only the table or --json).

    ``quiet``: third-party loggers kept at WARNING unless -vv; ``progress``: a logger shown at INFO
    even without -v (long runs). Returns the level.
    """
    from rich.logging import RichHandler

    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = RichHandler(console=Console(stderr=True), show_path=False, markup=False)
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler])
    for name in quiet:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    # urllib3 warns on every connection retry; our own retry loop reports those once per try.
    logging.getLogger("urllib3").setLevel(logging.DEBUG if verbosity >= 2 else logging.ERROR)
    if progress:
        logging.getLogger(progress).setLevel(min(level, logging.INFO))
    return level


class ConsoleUI:
    """The live step lines on stderr (``quiet``: none)."""

    def __init__(self, quiet: bool = False) -> None:
        # Our own handle on stderr: native-noise filtering (converter.tf_import) redirects fd 2.
        stream = os.fdopen(os.dup(2), "w", buffering=1)
        self.console = Console(file=stream, quiet=quiet, log_path=False)
        self.current: str | None = None  # the step running (or that failed): named in error lines

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        """A spinner while the block runs, then the step's line with its seconds."""
        t0 = time.perf_counter()
        self.current = text
        with self.console.status(f"{text}…"):
            yield
        self.console.log(f"{text} [dim]({time.perf_counter() - t0:.1f}s)[/dim]")

    def note(self, text: str) -> None:
        """One line on the console."""
        self.console.log(text)


def render_table(summary: Summary, console: Console | None = None) -> None:
    """The per-format table (perception builds add a ``vs source`` column), the bundle and run."""
    console = console or Console()
    title = f"{summary.model} v{summary.version}" + (" (cache hit)" if summary.cache_hit else "")
    table = Table(title=title, title_justify="left")
    perception = any(o.task for o in summary.outcomes)  # a driving bundle's table stays as it was
    cols = [("format", "left"), ("status", "left"), ("size", "right"), ("max error", "right"),
            *([("vs source", "left")] if perception else []), ("seconds", "right"), ("note", "left")]
    for col, just in cols:
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for o in summary.outcomes:
        table.add_row(
            o.format,
            f"[{_STYLE.get(o.status, '')}]{o.status}[/]",
            _size(o.bytes),
            f"{o.max_abs:.2e}" if o.max_abs is not None else "-",
            *([task_cell(o.task)] if perception else []),
            f"{o.seconds:.1f}",
            _short(o.reason),
        )
    console.print(table)
    where = f"bundle: {summary.bundle}" if summary.bundle else "no bundle written"
    run = f"  mlflow run: {summary.run_id}" if summary.run_id else ""
    console.print(f"{where}{run}  ({summary.seconds:.1f}s)")
    if summary.log_error:
        console.print(f"[bold red]MLflow logging failed:[/] {summary.log_error}")


def task_cell(task: dict[str, float] | None) -> str:
    """A perception build's agreement with the source in a few characters: ``mIoU 0.9980 drivable
    0.9990 px 0.9995`` or ``F1 1.0000 box IoU 0.9910 missed 0 extra 0``; ``-`` without figures."""
    if not task:
        return "-"
    parts = []
    if "miou" in task:
        parts.append(f"mIoU {task['miou']:.4f} drivable {task['drivable_iou']:.4f} px {task['pixel_acc']:.4f}")
    if "f1" in task:
        parts.append(f"F1 {task['f1']:.4f} box IoU {task['box_iou']:.4f} missed {task['missed']:.0f} "
                     f"extra {task['extra']:.0f}")
    return "; ".join(parts)


def print_json(summary: Summary) -> None:
    """``--json``: the summary on stdout."""
    sys.stdout.write(json.dumps(summary.to_dict(), indent=2) + "\n")


def _size(n: int | None) -> str:
    if not n:
        return "-"
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _short(reason: str | None, limit: int = 70) -> str:
    """The table shows the first clause; --json and the manifest keep the whole reason."""
    if not reason:
        return ""
    first = reason.split(";")[0].strip()
    return first if len(first) <= limit else first[: limit - 1] + "…"
