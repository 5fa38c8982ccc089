"""``--model-class`` whose module fails to import: one line naming the import and the fix (a
ModelLoadError, so exit 2), not an internal error. The failing modules are real files on
``sys.path``, imported for real."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from converter.errors import ModelLoadError
from converter.sources.torch_load import import_model_class

pytest.importorskip("torch")


@pytest.fixture
def on_path(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith("rc_test_")]:
            del sys.modules[name]


def test_a_torchvision_built_for_another_torch_names_the_fix(on_path: Path) -> None:
    # What PyPI's torchvision beside the CPU torch raises at import (torchvision/_meta_registrations.py)
    (on_path / "rc_test_tv_net.py").write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\nclass Net: ...\n")
    with pytest.raises(ModelLoadError) as e:
        import_model_class("rc_test_tv_net:Net")
    text = str(e.value)
    assert "\n" not in text
    assert "importing rc_test_tv_net failed (RuntimeError: operator torchvision::nms does not exist)" in text
    assert "torchvision" in text and "--index-url https://download.pytorch.org/whl/cpu" in text


def test_any_other_import_failure_names_the_module(on_path: Path) -> None:
    (on_path / "rc_test_bad_net.py").write_text("import os\nCONFIG = os.environ['RC_TEST_NO_SUCH_VAR']\n")
    with pytest.raises(ModelLoadError, match=r"importing rc_test_bad_net failed \(KeyError: 'RC_TEST_NO_SUCH_VAR'\); "
                                             r"fix that import \(python -c 'import rc_test_bad_net'"):
        import_model_class("rc_test_bad_net:Net")


def test_a_missing_module_or_attribute_names_pythonpath(on_path: Path) -> None:
    (on_path / "rc_test_ok_net.py").write_text("class Net: ...\n")
    with pytest.raises(ModelLoadError, match="is its package on PYTHONPATH"):
        import_model_class("rc_test_no_such_module:Net")
    with pytest.raises(ModelLoadError, match=r"has no attribute 'Other'.*PYTHONPATH"):
        import_model_class("rc_test_ok_net:Other")
    assert import_model_class("rc_test_ok_net:Net").__name__ == "Net"
