"""Latency plot (PNG, matplotlib's Agg backend: no display needed).

Left: CDF of per-call batch-1 latency of every measured build (all repeats pooled), with p50 and
p99 marked. Right: camera-to-command p50/p99 of the real loop next to the bare backend's p99.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def plot_latency(path: Path, results: dict[str, Any], samples: dict[str, list[np.ndarray]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loops = [b for b in results["builds"] if (b.get("loop") or {}).get("camera_to_command_ms")]
    fig, axes = plt.subplots(1, 2 if loops else 1, figsize=(12 if loops else 7, 4.5), squeeze=False)
    ax = axes[0][0]
    for fmt, chunks in samples.items():
        if not chunks:
            continue
        v = np.sort(np.concatenate(chunks))
        y = np.arange(1, len(v) + 1) / len(v)
        (line,) = ax.plot(v, y, label=f"{fmt} (n={len(v)})", linewidth=1.4)
        for q, marker in ((0.5, "o"), (0.99, "^")):
            ax.plot(np.quantile(v, q), q, marker, color=line.get_color())
    ax.set_xscale("log")
    ax.set_xlabel("batch-1 inference latency (ms, log scale)")
    ax.set_ylabel("fraction of calls")
    ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    m = results["model"]
    ax.set_title(f"{m['name']} v{m['version']}: latency CDF (o p50, ^ p99)", fontsize=10)
    if loops:
        ax2 = axes[0][1]
        x = np.arange(len(loops))
        w = 0.27
        c2c = [b["loop"]["camera_to_command_ms"] for b in loops]
        ax2.bar(x - w, [b["loop"]["bare_p99_ms"] for b in loops], w, label="bare inference p99")
        ax2.bar(x, [c["p50"] for c in c2c], w, label="camera-to-command p50")
        ax2.bar(x + w, [c["p99"] for c in c2c], w, label="camera-to-command p99")
        ax2.set_xticks(x, [b["format"] for b in loops], fontsize=8)
        ax2.set_ylabel("ms")
        ax2.set_title(f"real loop over a pty ({loops[0]['loop']['link']})", fontsize=10)
        ax2.grid(True, axis="y", alpha=0.3)
        ax2.legend(fontsize=8)
    mach = results["machine"]
    fig.suptitle(f"{mach.get('cpu_model')} x{mach.get('logical_cores')}"
                 + (f", {mach['gpu']}" if mach.get("gpu") else "") + f" — {results['created_at']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
