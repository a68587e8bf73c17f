# `make test` is everything CI checks; it builds its own virtualenv on a fresh clone.
#
# Every install comes from a committed lock, so a commit gives the same result on any machine
# and any day: uv.lock (`uv lock`) for the dev toolchain and every extra, tests/lowest.txt for
# the dependency floors (tests/locks.py says how). `make lock` refreshes both to the newest
# releases and runs the gate; `make test-latest` tries the runtime suites on the newest releases
# without touching the lock. CONTRIBUTING.md says when to do which.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The stamp, not the directory, is the target: a directory's mtime changes whenever pip
# touches it, and a half-finished install must not count as done.
STAMP  := $(VENV)/.installed
# A second virtualenv with the lowest versions the dependency floors allow.
LOWEST := .venv-lowest
# A third, made anew each time, with the newest releases pyproject.toml allows.
LATEST := .venv-latest
# `make demo` installs only what the demo runs (the `demo` extra), not the dev toolchain.
DEMO   := .venv-demo
# `make docs` installs only what the site is built with (the `docs` extra), into its own.
DOCS   := .venv-docs
# uv never fetches a Python of its own: every virtualenv runs the $(PYTHON) that made .venv.
export UV_PYTHON_DOWNLOADS := never
# The suites on two workers (pytest-xdist): every test starts its own servers on free ports.
# Work stealing keeps the long fault and server tests from piling up on one worker.
WORKERS ?= 2
PARALLEL := -n $(WORKERS) --dist worksteal
# `make lock LOCK_ARGS=` records a change of pyproject.toml without taking newer releases.
LOCK_ARGS ?= --upgrade

.DEFAULT_GOAL := test
.PHONY: .venv lint types test test-lowest test-latest lock demo bench docs fuzz clean

.venv: $(STAMP)

# A virtualenv with uv in it, installed by pip from uv.lock's hashes.
define uv_venv
	$(PYTHON) -m venv $(1)
	$(PYTHON) -m tests.locks uv > $(1)/uv-requirement.txt
	$(1)/bin/python -m pip install --quiet --require-hashes --no-deps -r $(1)/uv-requirement.txt
endef

# Exactly the lock, with the extras $(2), into the virtualenv $(1) (`uv sync` removes anything
# else). A lock that no longer matches pyproject.toml stops here and says how to refresh it.
define locked_sync
	@$(1)/bin/uv lock --check --quiet || { \
		echo "uv.lock does not match pyproject.toml: run \`make lock\` to refresh it, then commit uv.lock and tests/lowest.txt" >&2; \
		exit 1; }
	UV_PROJECT_ENVIRONMENT=$(1) $(1)/bin/uv sync --quiet --locked $(2)
endef

$(BIN)/uv:
	$(call uv_venv,$(VENV))

$(STAMP): pyproject.toml uv.lock $(BIN)/uv
	$(call locked_sync,$(VENV),--extra dev)
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
	$(BIN)/pytest $(PARALLEL)
	$(MAKE) test-lowest

# The core and fault suites once more on the lowest allowed redis, pydantic, blinker and
# typing-extensions: the floors in pyproject.toml are a promise, so they are tested. Against
# Redis only (the oldest server with the oldest clients): the main run covers both servers.
$(LOWEST)/.installed: tests/lowest.txt pyproject.toml uv.lock $(STAMP)
	@$(BIN)/python -m tests.locks check
	rm -rf $(LOWEST)
	$(BIN)/uv venv --quiet --python $(BIN)/python $(LOWEST)
	VIRTUAL_ENV=$(LOWEST) $(BIN)/uv pip sync --quiet --require-hashes tests/lowest.txt
	VIRTUAL_ENV=$(LOWEST) $(BIN)/uv pip install --quiet --no-deps -e .
	touch $@

test-lowest: $(LOWEST)/.installed
	HOTCONFIG_TEST_SERVER=redis $(LOWEST)/bin/pytest -q $(PARALLEL) -m "not slow" tests/core tests/faults

# The runtime suites (core, faults, integrations; not lint or types) on the newest releases
# pyproject.toml allows today, what `pip install 'hotconfig[all]'` gives a user: a red run here
# is a new upstream release that breaks hotconfig. It prints what differs from uv.lock first.
test-latest: $(STAMP)
	rm -rf $(LATEST)
	$(BIN)/uv venv --quiet --python $(BIN)/python $(LATEST)
	VIRTUAL_ENV=$(LATEST) $(BIN)/uv pip install --quiet --refresh -e '.[dev]'
	$(LATEST)/bin/python -m tests.locks drift
	$(LATEST)/bin/pytest -q $(PARALLEL) tests/core tests/faults tests/integrations

# Refresh both locks to the newest releases, then run the gate on them. A refresh is a commit
# of its own (CONTRIBUTING.md).
lock: $(BIN)/uv
	$(BIN)/uv lock $(LOCK_ARGS)
	$(BIN)/python -m tests.locks lowest $(BIN)/uv
	$(MAKE) test

# The hostile-input properties of `make test`, long: 25,000 cases per property (set
# HOTCONFIG_FUZZ_EXAMPLES to change it) for the changes channel, the bridge's envelopes, ids and
# names, health reports, the cache file and the CLI's values and files, and 20,000 payloads published on a real
# server. No per-test timeout: a long run is the point.
fuzz: $(STAMP)
	HOTCONFIG_FUZZ_PROFILE=fuzz $(BIN)/pytest -q --timeout=0 --hypothesis-show-statistics \
		tests/core/test_wire_properties.py tests/faults/test_hostile_properties.py \
		tests/core/test_lastgood_properties.py tests/cli/test_commands_properties.py \
		tests/cli/test_files_properties.py tests/core/test_bridge_properties.py \
		tests/core/test_registry_properties.py

$(DEMO)/.installed: pyproject.toml uv.lock
	$(call uv_venv,$(DEMO))
	$(call locked_sync,$(DEMO),--extra demo)
	touch $@

# The example apps under real servers, changed live, until Ctrl-C (docs/cli.md, "hotconfig
# demo"); `python docs/examples/demo.py` is the core-only walk-through.
demo: $(DEMO)/.installed
	$(DEMO)/bin/hotconfig demo

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks

$(DOCS)/.installed: pyproject.toml uv.lock
	$(call uv_venv,$(DOCS))
	$(call locked_sync,$(DOCS),--extra docs)
	touch $@

# The site, into site/: Material, the API reference from the docstrings (mkdocstrings reads the
# source, it imports nothing), highlighting by Pygments. Strict: a broken link or a page
# missing from the navigation stops the build.
docs: $(DOCS)/.installed
	NO_MKDOCS_2_WARNING=1 $(DOCS)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) $(LOWEST) $(LATEST) $(DEMO) $(DOCS) build dist site .pytest_cache .mypy_cache .ruff_cache .bench *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
