"""The README's command lines are real: each parses with its CLI's own parser, and the first
converter examples run against the demo registry."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _parsers() -> dict[str, Any]:
    from benchmarks.cli import build_parser as bench
    from calibration.cli import build_parser as calib
    from converter.cli import build_parser as convert
    from runtime.cli_args import build_parser as runtime
    from runtime.sim.cli import _parser as sim
    from runtime.update.cli import build_parser as update

    return {"convert-model": convert, "rc-runtime": runtime, "rc-car-sim": sim, "rc-calibrate": calib,
            "rc-benchmark": bench, "rc-update": update}


def readme_commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)
    commands = []
    for block in blocks:
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split(" #", 1)[0].strip().rstrip("&").strip()
            if line:
                commands.append(shlex.split(line))
    return commands


def test_readme_has_the_two_commands_first() -> None:
    first = readme_commands()[:2]
    assert [c[:2] for c in first] == [["make", "demo"], ["make", "test"]]


@pytest.mark.parametrize("argv", [c for c in readme_commands() if c[0] in (
    "convert-model", "rc-runtime", "rc-car-sim", "rc-calibrate", "rc-benchmark", "rc-update")], ids=" ".join)
def test_every_readme_command_parses(argv: list[str]) -> None:
    if argv[0] == "rc-update" and len(argv) > 1 and argv[1] in ("rollback", "status"):  # subcommands
        from runtime.update.cli import rollback_parser, status_parser

        sub = rollback_parser if argv[1] == "rollback" else status_parser
        argv = [" ".join(argv[:2]), *argv[2:]]
        parser: argparse.ArgumentParser = sub()
    else:
        parser = _parsers()[argv[0]]()
    parser.exit_on_error = False
    try:
        parser.parse_args(argv[1:])
    except SystemExit as e:  # argparse reports some errors by exiting even with exit_on_error off
        pytest.fail(f"README command does not parse: {' '.join(argv)} (exit {e.code})")


@pytest.mark.slow
def test_first_converter_examples_run(demo_registry: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from converter.cli import main

    monkeypatch.setenv("RC_MODEL_NAME", demo_registry.name)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", demo_registry.tracking_uri)
    examples = [c for c in readme_commands() if c[0] == "convert-model" and "--bundle" not in c][:3]
    assert examples
    for argv in examples:
        code = main([*argv[1:], "--output", str(tmp_path), "--no-log", "--json"])
        out = capfd.readouterr().out
        assert code == 0, (argv, out)
        assert json.loads(out)["bundle"]
