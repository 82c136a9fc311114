# The two commands a fresh machine needs: `make demo` and `make test`; `make docs` builds the site.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of torch is pinned and installed first, so that the package's
# own range (torch>=2.1,<3) is already satisfied and no CUDA wheel is pulled.
TORCH  ?= torch==2.13.0

.PHONY: setup test demo bench docs docs-serve clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/.installed

$(BIN)/.docs-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,docs]'
	touch $@

# Lint and type-check the package, then the whole suite (with the docs extra: the suite
# executes the tutorials and builds the API reference).
test: $(BIN)/.docs-installed
	$(BIN)/ruff check src/rkm
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# The main job: train an RKM on the 4500 mnist-5k training digits (a fresh run folder each
# time), then print the headline numbers and where the figures are.
# Its torch threads: OMP_NUM_THREADS if set, else the cores idle when it starts (the core count
# minus the 1-minute load average, at least 1): more threads than free cores make every
# update wait for the busiest one.
DEMO_THREADS ?= $(or $(OMP_NUM_THREADS),$(shell $(PYTHON) -c 'import os; print(max(1, os.cpu_count() - round(os.getloadavg()[0])))'))
demo: setup
	rm -rf runs/demo
	@echo "make demo: $(DEMO_THREADS) torch thread(s) (OMP_NUM_THREADS=N make demo uses N; on a shared machine, the idle cores)"
	OMP_NUM_THREADS=$(DEMO_THREADS) $(BIN)/rkm train --preset demo --run-dir runs/demo

# The benchmark against pyrkm 0.1.0, scikit-learn and the GEMM rate (about 27 minutes on 2 cores).
bench: setup
	bash benchmarks/setup.sh
	$(BIN)/python -m benchmarks.train_step --plot

# The documentation site, into site/: strict (-W: a warning fails the build; -n: so does a
# broken cross-reference), every tutorial executed (about ten minutes on 2 cores).
# RKM_DOCS_EXECUTE=off skips the tutorials' execution for a quick look at the pages.
docs: $(BIN)/.docs-installed
	$(BIN)/python -m sphinx -b html -E -n -W --keep-going -d build/doctrees docs site

# Serve the built site on http://localhost:8000 (build it first with `make docs`).
docs-serve:
	@test -f site/index.html || { echo "no site/ yet: run make docs first"; exit 1; }
	$(BIN)/python -m http.server --directory site 8000

clean:
	rm -rf $(VENV) build site docs/api jupyter_execute src/*.egg-info
