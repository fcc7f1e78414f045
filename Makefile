# Every target installs what it needs into .venv first (torch pinned to the CPU build).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KERNEL := mol_diffusion

.PHONY: install test test-slow lint format clean sample-complexity claims calibrate figures notebooks report paper tex

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (mol_diffusion)" >/dev/null
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the package, dev tools and the Jupyter kernel

test: $(STAMP)  ## the fast suite (lint and format checks included), one process per core
	$(BIN)/python -m pytest -q -n auto --dist worksteal

sample-complexity: $(STAMP)  ## the headline experiment: executes the notebook into build/ (make figures refreshes notebooks/executed/)
	@mkdir -p $(BUILD)
	$(BIN)/papermill notebooks/sample_complexity.ipynb $(BUILD)/sample_complexity.ipynb

claims: $(STAMP)  ## print every claim's verdict from the saved results
	$(BIN)/python -m mol_diffusion claims

calibrate: $(STAMP)  ## size and power of every claim rule by simulation (2 workers)
	$(BIN)/python -m mol_diffusion calibrate --workers 2

# ---------------------------------------------------------------- figures and executed notebooks
# Each notebook's stamp depends on its source (notebooks/NAME.py, the source of truth), the
# library and the experiment configs the notebook loads (derived from its run_experiment("...")
# or load_experiment("...") calls into build/NAME.d). Sweeps reuse stored tables whose config
# and code are unchanged, so editing one config reruns one sweep; editing the library
# re-executes every notebook, and a sweep only where the code its kind uses changed.
# make figures first lists every stored table (current, stale or missing) and re-executes the
# notebooks of the stale and missing ones, which recomputes them; REUSE_STALE=1 keeps stale
# tables (each use warns; a table of another config cannot be reused). make figures PAPERMILL_ARGS="-p force True" recomputes every sweep
# (delete build/ first). The paper is rebuilt at the end when TeX is installed (make tex).
BUILD     := build
NOTEBOOKS := $(basename $(notdir $(wildcard notebooks/*.py)))
LIBRARY   := $(shell find mol_diffusion -name '*.py')
NB_STAMPS := $(NOTEBOOKS:%=$(BUILD)/%.stamp)
REUSE     := $(filter 1 yes true,$(REUSE_STALE))
NB_ARGS    = --log-level WARNING $(if $(REUSE),-p reuse_stale True) $(PAPERMILL_ARGS)

# every quoted name in a notebook that has a config in experiments/ is one of its experiments
# (run_experiment("x") or a loop over names)
$(BUILD)/%.d: notebooks/%.py
	@mkdir -p $(BUILD)
	@printf '$(BUILD)/%s.stamp:' $* > $@
	@for e in $$(grep -oE '"[A-Za-z0-9_]+"' $< | tr -d '"' | sort -u); do \
	  [ -f experiments/$$e.toml ] && printf ' experiments/%s.toml experiments/results/%s.meta.json' $$e $$e; \
	done >> $@; true
	@echo >> $@

# A table recomputed elsewhere (python -m mol_diffusion run) re-executes its notebooks; a
# missing one is made by its notebook.
experiments/results/%.meta.json: ;

-include $(NOTEBOOKS:%=$(BUILD)/%.d)

$(BUILD)/%.stamp: notebooks/%.py $(LIBRARY) | $(STAMP)
	@mkdir -p $(BUILD) notebooks/executed
	$(BIN)/jupytext --sync notebooks/$*.py
	$(BIN)/papermill notebooks/$*.ipynb notebooks/executed/$*.ipynb $(NB_ARGS)
	touch $@

figures: | $(STAMP)  ## execute the notebooks into notebooks/executed/ (recomputing stale tables), write figures/, report, paper
	@$(BIN)/python -m mol_diffusion run
	@$(if $(REUSE),true,for e in $$($(BIN)/python -m mol_diffusion stale); do \
	  grep -l "experiments/$$e.toml" $(BUILD)/*.d 2>/dev/null | sed 's/\.d$$/.stamp/' | xargs -r rm -f; done)
	@$(MAKE) --no-print-directory notebooks
	$(BIN)/python -m mol_diffusion report
	@if command -v latexmk >/dev/null && command -v pdflatex >/dev/null; then \
	  $(MAKE) --no-print-directory paper; else echo "no TeX here: paper/main.pdf not rebuilt (make tex installs it)"; fi

notebooks: $(NB_STAMPS)

report: $(STAMP)  ## claims.json, paper/generated/*.tex and README's claims table from the results
	$(BIN)/python -m mol_diffusion report

# ---------------------------------------------------------------- the companion paper
TEX_PACKAGES := latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended

tex:  ## make sure latexmk and TeX Live are there (installs Debian packages when run as root)
	@command -v latexmk >/dev/null && command -v pdflatex >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEX_PACKAGES); \
	  else echo "make paper needs latexmk and TeX Live: install $(TEX_PACKAGES)"; exit 1; fi; }

paper: paper/main.pdf  ## build paper/main.pdf (run make figures first to refresh its numbers)

# No timestamp of its own: the same inputs give the same PDF. main.inputs.json records the
# hashes of the inputs and the PDF (tests/test_artifacts.py checks them).
paper/main.pdf: paper/main.tex $(wildcard paper/generated/*.tex) $(wildcard figures/*.pdf) | tex $(STAMP)
	cd paper && SOURCE_DATE_EPOCH=0 FORCE_SOURCE_DATE=1 latexmk -pdf -interaction=nonstopmode -halt-on-error -quiet main.tex
	$(BIN)/python -m mol_diffusion.artifacts stamp

test-slow: $(STAMP)  ## long-running tests only
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(BUILD) .pytest_cache .ruff_cache .hypothesis
	cd paper && latexmk -C -quiet main.tex 2>/dev/null || true
