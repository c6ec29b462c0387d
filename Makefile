# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: venv install demo test lint bench clean chromium

venv: $(BIN)/python

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip wheel

# torch and torchvision are installed by exact version first: on this machine pip takes them
# from local disk; pyproject declares the ranges torch>=2.4, torchvision>=0.19.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1 || $(BIN)/python -m pip install -q torch torchvision
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python -m prunekit.cli.demo

# headless Chromium renders the `prunekit graph --html` page in a test (skipped without it)
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1; } || \
		echo "chromium is not installed: the page-rendering test will be skipped"

test: install chromium
	# one intra-op thread: the tests use tiny inputs, where thread hand-offs cost more than they save
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q --timeout=900

$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(DEV_STAMP)

# all four run even when one fails, so one pass shows every problem; make still exits non-zero
lint: $(DEV_STAMP)
	status=0; \
	$(BIN)/ruff check prunekit tests benchmarks || status=1; \
	$(BIN)/ruff format --check prunekit tests benchmarks || status=1; \
	$(BIN)/mypy || status=1; \
	$(BIN)/lint-imports || status=1; \
	exit $$status

bench: install
	$(BIN)/python benchmarks/engine_speed.py

clean:
	rm -rf $(VENV) build *.egg-info
