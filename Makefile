# Two commands do all set-up: `make demo` and `make test`. Both create .venv on first use and install the exact
# versions of constraints.txt (those the README's figures come from; pyproject.toml keeps ranges for library users).
# On a GPU machine, override the PyTorch requirement, e.g.  make test TORCH='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128'
# (a CUDA build 2.13.0+cu128 satisfies the pin torch==2.13.0). CONSTRAINTS= installs without the pins.
# The TORCH value is recorded in .venv/.torch: a different value reinstalls PyTorch, even in an existing .venv.
PYTHON ?= python3
TORCH ?= torch==2.13.0
CONSTRAINTS ?= constraints.txt
PIN := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_SPEC := $(VENV)/.torch
QUICK ?= --quick

.PHONY: demo test test-slow lint bench install clean docs FORCE

# rewritten only when TORCH differs from the recorded value, so that its date tells make when to reinstall
$(TORCH_SPEC): FORCE
	@mkdir -p $(VENV)
	@printf '%s\n' '$(TORCH)' | cmp -s - $@ || printf '%s\n' '$(TORCH)' > $@

$(STAMP): pyproject.toml $(CONSTRAINTS) $(TORCH_SPEC)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip $(PIN)
	cmp -s $(TORCH_SPEC) $(VENV)/.torch-installed || $(BIN)/python -m pip uninstall --quiet --yes torch
	$(BIN)/python -m pip install --quiet $(TORCH) $(PIN)
	cp $(TORCH_SPEC) $(VENV)/.torch-installed
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

# the CPU benchmarks of benchmarks/RESULTS.md at quick sizes; QUICK= runs the measured sizes (minutes to an hour)
bench: $(STAMP)
	$(BIN)/python benchmarks/cli_bench.py $(QUICK)
	$(BIN)/python benchmarks/step_bench.py $(QUICK)
	$(BIN)/python benchmarks/eval_bench.py $(QUICK)

FORCE:

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
