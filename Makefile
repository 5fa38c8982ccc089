# Two commands on a fresh machine:  `make demo`  and  `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
DEMO    := .demo
DEMO_DB := sqlite:///$(DEMO)/mlflow.db

.PHONY: setup demo registry convert test lint typecheck pytest firmware clean

$(VENV)/.installed: setup.py requirements/constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements/constraints.txt -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

# Seed a local MLflow registry with the demo model (v1, v2, v3, each logged a different way),
# then convert version 3 into builds/rc_pilot/v3.
demo: registry convert

registry: setup
	$(BIN)/rc-demo-registry --tracking-uri $(DEMO_DB) --artifact-root $(DEMO)/artifacts --media $(DEMO)/media

convert: setup
	$(BIN)/convert-model --version 3

test: setup lint typecheck pytest

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy converter calibration benchmarks tests
	$(BIN)/mypy --python-version 3.10 runtime

pytest: setup
	$(BIN)/pytest -ra

clean:
	rm -rf $(DEMO) builds .pytest_cache .mypy_cache .ruff_cache
