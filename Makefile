# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
RUNTIME_STAMP := $(VENV)/.runtime-stamp
PIP    := $(BIN)/python -m pip install -q --disable-pip-version-check

.PHONY: demo test test-all bench lint clean

demo: $(RUNTIME_STAMP)
	@scripts/system-deps.sh
	@$(BIN)/pibridge demo

test: $(STAMP)
	@scripts/system-deps.sh --test
	PYTHON=$(BIN)/python scripts/run-tests.sh

test-all: $(STAMP)
	@scripts/system-deps.sh --test
	PYTHON=$(BIN)/python scripts/run-tests.sh --runslow

bench: $(RUNTIME_STAMP)
	@scripts/system-deps.sh
	$(BIN)/python bench/run_all.py

$(VENV)/bin/python:
	@echo "pibridge: creating the virtual environment in $(VENV)"
	@$(PYTHON) -m venv $(VENV)

# The demo and the benchmarks need only pibridge itself; the tests also need their tools.
$(RUNTIME_STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "pibridge: installing pibridge and its dependencies"
	@$(PIP) -e . >$(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
	@touch $@

$(STAMP): pyproject.toml $(RUNTIME_STAMP)
	@echo "pibridge: installing the test tools"
	@$(PIP) -e '.[test]' >$(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
	@touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
