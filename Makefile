# Every target installs what it needs into .venv first (torch pinned to the CPU build).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KERNEL := mol_diffusion

.PHONY: install test test-slow lint format clean sample-complexity claims

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (mol_diffusion)" >/dev/null
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the package, dev tools and the Jupyter kernel

test: $(STAMP)  ## the fast suite (lint and format checks included)
	$(BIN)/python -m pytest -q

sample-complexity: $(STAMP)  ## the headline experiment: executes the notebook with default parameters
	$(BIN)/papermill notebooks/sample_complexity.ipynb notebooks/executed/sample_complexity.ipynb

claims: $(STAMP)  ## print every claim's verdict from the saved results
	$(BIN)/python -m mol_diffusion claims

test-slow: $(STAMP)  ## long-running tests only
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
