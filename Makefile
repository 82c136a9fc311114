# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of torch is pinned and installed first, so that the package's
# own range (torch>=2.1,<3) is already satisfied and no CUDA wheel is pulled.
TORCH  ?= torch==2.13.0

.PHONY: setup test demo bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/.installed

# Lint and type-check the package, then the whole suite.
test: setup
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

clean:
	rm -rf $(VENV) build src/*.egg-info
