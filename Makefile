# Two entry points for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CONFIG ?= runs/digits-pareto.yaml

.PHONY: run test test-fast bench install clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(VENV)/bin/evonas run $(CONFIG)

test: $(VENV)/.installed
	$(PY) -m pytest -q

test-fast: $(VENV)/.installed   # the inner loop: everything but the slow system tests
	$(PY) -m pytest -q -m "not slow"

bench: $(VENV)/.installed
	$(PY) tests/bench/bench_engine.py

clean:
	rm -rf $(VENV) build *.egg-info
