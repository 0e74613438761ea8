# Two commands do all set-up: `make demo` and `make test`. Both create .venv on first use and install the exact
# versions of constraints.txt (those the README's figures come from; pyproject.toml keeps ranges for library users).
# On a GPU machine, override the PyTorch requirement, e.g.  make test TORCH='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128'
# (a CUDA build 2.13.0+cu128 satisfies the pin torch==2.13.0). CONSTRAINTS= installs without the pins.
PYTHON ?= python3
TORCH ?= torch==2.13.0
CONSTRAINTS ?= constraints.txt
PIN := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint bench install clean docs

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip $(PIN)
	$(BIN)/python -m pip install --quiet $(TORCH) $(PIN)
	$(BIN)/python -m pip install --quiet -e '.[dev]' $(PIN)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/baldro demo $(DEMO_ARGS)

# docs/config.md and docs/baldro.schema.json, generated from the run-config schema (tests check they are current).
docs: $(STAMP)
	$(BIN)/baldro config schema --out docs/baldro.schema.json
	$(BIN)/python -m baldro.reference_doc > docs/config.md

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

test: lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
