# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-all bench lint clean

demo: $(STAMP)
	@scripts/system-deps.sh
	$(BIN)/pibridge demo

test: $(STAMP)
	@scripts/system-deps.sh --test
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	@scripts/system-deps.sh --test
	$(BIN)/python -m pytest -q --runslow

bench: $(STAMP)
	@scripts/system-deps.sh
	$(BIN)/python bench/run_all.py

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
