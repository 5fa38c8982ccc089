"""Run one CI stage and say how long it took: ``python3 .ci/stage.py NAME CMD [ARG...]``.

Prints ``stage NAME: N s`` (wall time on the monotonic clock, whole seconds) when CMD ends, also
when it fails, and exits with CMD's status (128 + N when a signal N ended it), so ``set -e`` and
make stop exactly as they would without this wrapper. Standard library only: it runs before the
venv exists (the setup stage).
"""

from __future__ import annotations

import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        sys.stderr.write("usage: stage.py NAME CMD [ARG...]\n")
        return 2
    name, cmd = argv[0], argv[1:]
    start = time.monotonic()
    try:
        code = subprocess.call(cmd)
    except OSError as e:  # CMD not found / not executable: a failed stage, as the shell would say
        sys.stderr.write(f"stage {name}: cannot run {cmd[0]}: {e.strerror}\n")
        code = 127
    except KeyboardInterrupt:
        code = 130
    sys.stdout.write(f"stage {name}: {time.monotonic() - start:.0f} s\n")  # CI output, not logging
    sys.stdout.flush()
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
