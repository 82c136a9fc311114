# The two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of torch is pinned and installed first, so that the package's
# own range (torch>=2.1,<3) is already satisfied and no CUDA wheel is pulled.
TORCH  ?= torch==2.13.0

.PHONY: setup test demo clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/.installed

test: setup
	$(BIN)/python -m pytest -q

demo: setup
	$(BIN)/python -m rkm.demo

clean:
	rm -rf $(VENV) build src/*.egg-info
