"""Per-module mutation score from `mutmut results --all true` (run after `mutmut run`).

Prints one line per module: killed / (killed + survived + no tests + timeout...), and the
survivors' names, so `make mutation` ends with the figure that the issue asks for.
"""

from __future__ import annotations

import collections
import subprocess
import sys

KILLED = {"killed", "timeout", "segfault"}  # a mutant that makes the tests fail, hang or crash is caught


def main() -> int:
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                         capture_output=True, text=True, check=True).stdout
    by_module: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    survivors: dict[str, list[str]] = collections.defaultdict(list)
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if not sep or "__mutmut_" not in name:
            continue
        module = name.split(".x", 1)[0] if ".x" in name else name.rsplit(".", 1)[0]
        by_module[module][status] += 1
        if status not in KILLED:
            survivors[module].append(f"{name} ({status})")
    lines: list[str] = []
    total_k = total = 0
    for module in sorted(by_module):
        c = by_module[module]
        n, k = sum(c.values()), sum(v for s, v in c.items() if s in KILLED)
        total, total_k = total + n, total_k + k
        detail = ", ".join(f"{s} {v}" for s, v in sorted(c.items()))
        lines.append(f"{module:32s} {100 * k / n:5.1f}% killed ({k}/{n}: {detail})")
    if total:
        lines.append(f"{'all':32s} {100 * total_k / total:5.1f}% killed ({total_k}/{total})")
    for module in sorted(survivors):
        lines += ["", f"survivors in {module}:", *(f"  {s}" for s in survivors[module])]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
