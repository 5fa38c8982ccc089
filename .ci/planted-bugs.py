"""Plant each bug of issue 15's table, one at a time, in a scratch copy of this checkout, and check
that the fast tests named for it fail. `make planted-bugs`; exit 1 if any bug survives.

Each plant is an exact text replacement: if the code it targets has moved, the script says so
(exit 2) rather than reporting a bug as caught.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (name, file, old text, planted text, tests that must fail)
PLANTS = [
    ("preprocessing: RGB/BGR branch inverted", "runtime/preprocess.py",
     'if spec.color == "RGB":', 'if spec.color == "BGR":', ["tests/runtime/test_preprocess_oracle.py"]),
    ("preprocessing: per-channel mean/std with np.repeat for np.tile", "runtime/preprocess.py",
     "np.tile(a, w), np.tile(b, w)", "np.repeat(a, w), np.repeat(b, w)", ["tests/runtime/test_preprocess_oracle.py"]),
    ("parity: max_abs computed as the mean error", "converter/parity.py",
     '{"max_abs": float(err.max())', '{"max_abs": float(err.mean())', ["tests/converter/test_parity_oracle.py"]),
    ("parity: error from the first frame only", "converter/parity.py",
     "err = np.abs(got[name].reshape(ref2.shape).astype(np.float64) - ref2)",
     "err = np.abs(got[name].reshape(ref2.shape).astype(np.float64) - ref2)[:1]",
     ["tests/converter/test_parity_oracle.py"]),
    ("watchdog: command age from send time instead of capture time", "runtime/watchdog.py",
     "self._guard_deadline(t_capture + self.deadline_s)", "t_capture = time.monotonic()\n"
     "                self._guard_deadline(t_capture + self.deadline_s)",
     ["tests/runtime/test_watchdog_capture_age.py"]),
    ("cache key: opset dropped", "converter/cache.py",
     '"opset": req.options.opset,', "", ["tests/converter/test_cache_key.py"]),
    ("policy: slew step cap removed", "runtime/policy.py",
     "min(max(0.0, now - self._t_last), self.max_gap_s)", "max(0.0, now - self._t_last)",
     ["tests/runtime/test_policy.py"]),
    ("policy: slew step cap hard-coded at 0.1 s", "runtime/policy.py",
     "min(max(0.0, now - self._t_last), self.max_gap_s)", "min(max(0.0, now - self._t_last), 0.1)",
     ["tests/runtime/test_policy.py"]),
]


def main() -> int:
    failed = 0
    with tempfile.TemporaryDirectory(prefix="planted-") as tmp:
        for name, rel, old, new, tests in PLANTS:
            copy = Path(tmp) / "tree"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(
                ".venv*", ".git", ".cache", "mutants", "builds", ".demo", "*.egg-info", "__pycache__", ".*_cache"))
            target = copy / rel
            text = target.read_text()
            if text.count(old) != 1:
                sys.stderr.write(f"cannot plant {name!r}: {rel} no longer has exactly one {old!r}; "
                                 "update .ci/planted-bugs.py\n")
                return 2
            target.write_text(text.replace(old, new))
            env = {**os.environ, "PYTHONPATH": str(copy)}
            r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                               cwd=copy, env=env, capture_output=True, text=True)
            caught = r.returncode != 0
            last = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
            sys.stdout.write(f"{'caught  ' if caught else 'SURVIVED'} {name}: {' '.join(tests)} -> {last}\n")
            failed += not caught
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
