# Two commands on a fresh machine:  `make demo`  and  `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
DEMO    := .demo
DEMO_DB := sqlite:///$(DEMO)/mlflow.db

.PHONY: setup demo registry convert test test-fast test-deps lint typecheck pytest test-runtime-py310 clean mutation planted-bugs

# torch's CPU build (190 MB) before the torch extra, so pip never pulls the multi-GB CUDA one: the
# machine's wheelhouse when it has the wheel, else PyTorch's CPU index.
TORCH_WHEEL ?= $(firstword $(wildcard /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl))
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

$(VENV)/.installed: setup.py requirements/constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements/constraints.txt $(if $(TORCH_WHEEL),$(TORCH_WHEEL),torch --index-url $(TORCH_CPU_INDEX))
	$(BIN)/pip install -q -c requirements/constraints.txt -e '.[dev,torch]'
	$(BIN)/pip install -q --no-deps -c requirements/constraints.txt tf_keras  # legacy .h5 pilots, onnx2tf; see constraints
	touch $@

setup: $(VENV)/.installed

# Seed a local MLflow registry with the demo model (v1, v2, v3, each logged a different way), the
# PyTorch JetRacer-style pilot (v1 pt2, v2 pickle) and the seed team's perception models (lane_segmenter
# v1 pt2 / v2 pickle, cone_detector v1 pickle), then convert rc_pilot v3, jetracer_pilot v1 and both
# perception models' v1.
demo: registry convert

registry: setup
	$(BIN)/rc-demo-registry --tracking-uri $(DEMO_DB) --artifact-root $(DEMO)/artifacts --media $(DEMO)/media
	$(BIN)/python -m converter.demo.jetracer_seed --tracking-uri $(DEMO_DB) --artifact-root $(DEMO)/artifacts
	$(BIN)/python -m converter.demo.perception_seed --tracking-uri $(DEMO_DB) --artifact-root $(DEMO)/artifacts

# Both pilots: the Keras one (builds/rc_pilot/v3) and the PyTorch JetRacer-style one (builds/jetracer_pilot/v1);
# the perception models: builds/lane_segmenter/v1 (segmentation) and builds/cone_detector/v1 (detection).
convert: setup
	$(BIN)/convert-model --version 3
	$(BIN)/convert-model --name jetracer_pilot --version 1
	$(BIN)/convert-model --name lane_segmenter --version 1
	$(BIN)/convert-model --name cone_detector --version 1 --formats onnx,onnx-fp16  # no TFLite: see README

# Each stage in turn, as its own make, printing `stage NAME: N s` when it ends (also when it fails,
# and then make stops there, as with prerequisites).
STAGE := $(PY) .ci/stage.py
test:
	@$(STAGE) setup $(MAKE) --no-print-directory setup
	@$(STAGE) lint $(MAKE) --no-print-directory lint
	@$(STAGE) typecheck $(MAKE) --no-print-directory typecheck
	@$(STAGE) pytest $(MAKE) --no-print-directory pytest
	@$(STAGE) test-runtime-py310 $(MAKE) --no-print-directory test-runtime-py310

# The fast path while developing (under 3 minutes on 2 cores): unit and in-process tests. Leaves out
# what `make test` also runs: tests marked slow (TensorFlow training and conversions, every test that
# needs the demo model: tests/conftest.py marks them), server (a real mlflow server) and gpu, plus
# lint, typecheck, the TensorRT bindings fetch and the Python 3.10 runtime run.
test-fast: setup
	$(BIN)/pytest -q -m "not slow and not server and not gpu"

# Docstring coverage of the bundle contract and the safety-critical/public API (ruff's pydocstyle
# D1 rules; `_private` names are exempt). D105 (magic methods) and D107 (`__init__`) are off: the
# class docstring documents construction, and dunders keep Python's data-model meaning. Widen this
# list as modules are documented; tests/test_docstring_check.py proves a removed docstring fails it.
DOCSTRING_CHECKED := runtime/manifest runtime/perception runtime/agreement converter/task_parity.py runtime/pilots runtime/safety runtime/overlay.py runtime/recording.py runtime/formats.py runtime/preprocess.py runtime/policy.py \
	runtime/watchdog.py runtime/loop.py runtime/backends runtime/decode runtime/link runtime/inputs \
	runtime/camera runtime/tensorrt converter/parity.py converter/cache.py converter/signing.py \
	converter/cli.py calibration/cli.py benchmarks/cli.py runtime/sim/cli.py converter/demo/seed.py \
	converter/demo/jetracer_seed.py converter/demo/perception_seed.py converter/demo/perception_data.py \
	converter/demo/segmenter.py converter/demo/detector.py converter/demo/segmenter_net.py \
	converter/demo/detector_net.py converter/demo/mobile_blocks.py runtime/cli.py runtime/cli_args.py runtime/assembly.py \
	runtime/signal_stop.py runtime/atomic.py runtime/resources.py runtime/versions.py runtime/backend_names.py \
	converter/tracking_store.py runtime/error_line.py runtime/link/sent_commands.py converter/sources/keras_inspect.py \
	converter/sources/hints.py calibration/preprocess_flags.py \
	runtime/shadow runtime/telemetry.py runtime/mailbox.py runtime/metrics runtime/bundle_steps.py runtime/check.py \
	runtime/guard_check.py \
	runtime/roles runtime/odometry runtime/update runtime/state_file.py
DOCSTRING_RULES   := --select D1 --ignore D105,D107

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff check $(DOCSTRING_RULES) $(DOCSTRING_CHECKED)

# The last step checks runtime/tensorrt against typed stubs of every fetched TensorRT binding (one
# mypy run per version; README "Typed per version"), so it fetches those bindings first.
typecheck: setup
	$(BIN)/mypy converter calibration benchmarks tests
	$(BIN)/mypy --python-version 3.10 runtime
	@PYTHON=$(BIN)/python .ci/fetch-trt-bindings.sh
	$(BIN)/python -m tests.runtime.tensorrt.typed_check

pytest: setup test-deps
	$(BIN)/pytest -ra

# What CI (.ci/run) has before `make test`: TensorRT's binding wheels (a few MB from PyPI, cached in
# .cache/trt-bindings) for the real-binding TensorRT API tests, and a plain list of the optional
# toolchains that are missing (their tests skip, saying so).
test-deps: setup
	@PYTHON=$(BIN)/python .ci/fetch-trt-bindings.sh || echo "test-deps: COULD NOT FETCH TensorRT bindings (offline?): the TensorRT API tests will skip"
	@.ci/install-optional.sh --check

# Mutation testing of the safety-critical modules ([tool.mutmut] in pyproject.toml: policy, output
# decoding, preprocessing, watchdog, link protocol, manifest, parity, cache key), then the score per module and the surviving mutants. Not part of
# `make test` (about 20 minutes on 2 cores); see `mutmut browse` to inspect a survivor.
mutation: setup
	rm -rf mutants
	env -u PYTHONPATH $(BIN)/mutmut run
	env -u PYTHONPATH $(BIN)/python .ci/mutation-score.py

# Issue 15's planted bugs, one at a time in a scratch copy: each must fail the fast tests named for it.
planted-bugs:
	$(BIN)/python .ci/planted-bugs.py

clean:
	rm -rf $(DEMO) builds .pytest_cache .mypy_cache .ruff_cache mutants $(VENV310)

# The runtime on the car's Python (JetPack 6: 3.10) with only the runtime extra installed (no
# TensorFlow, no MLflow), tested against the bundle the converter made in `make demo`.
# python3.10 on PATH, else pyenv's (its shim answers even when 3.10 is not enabled, so ask for the file).
PY310   ?= $(shell python3.10 -c 'import sys; print(sys.executable)' 2>/dev/null || ls $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.10*/bin/python3.10 2>/dev/null | tail -1)
VENV310 ?= .venv310

# car-constraints.txt: the car's own pins (numpy 1.26.4, pyserial, tomli, cryptography), as jetson/install.sh uses.
$(VENV310)/.installed: setup.py requirements/constraints.txt requirements/car-constraints.txt
	$(PY310) -m venv $(VENV310)
	$(VENV310)/bin/pip install -q --upgrade pip
	$(VENV310)/bin/pip install -q -c requirements/constraints.txt -c requirements/car-constraints.txt -e '.[runtime]' onnx pytest pytest-timeout hypothesis  # onnx: test fixtures only
	touch $@

test-runtime-py310: demo
	@if [ -z "$(PY310)" ]; then echo "test-runtime-py310: no python3.10 on PATH, skipped"; exit 0; fi; \
	$(MAKE) --no-print-directory $(VENV310)/.installed && \
	RC_TEST_BUNDLE=$(CURDIR)/builds/rc_pilot/v3 $(VENV310)/bin/pytest -ra -p no:cacheprovider tests/runtime tests/calibration/test_trt_calibration_cache.py

# The runtime's arm64 subset (tests/runtime/arm64.txt) in a Debian arm64 root under qemu-user-static,
# with the runtime extra's aarch64 wheels; .ci/arm64-root.sh makes the root in .cache/arm64-root (needs
# root: debootstrap, chroot). Not part of `make test`: CI runs it as its own stage. README "On arm64".
.PHONY: test-arm64
test-arm64:
	.ci/test-arm64.sh
