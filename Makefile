# Two commands set everything up:  make demo  |  make test
# Both create .venv with Python 3.11 and the pinned dependencies on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Rules call the `syndface` command, so the venv's bin goes first on PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo test lint clean-results venv-gpu-pascal

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# The venv for Pascal/Volta GPUs (P100, V100), whose compute capability the default torch build
# (CUDA 13, sm_75+) lacks: the lock's pins with torch's CUDA 12.6 build (envs/gpu-pascal.yaml's
# list). It runs on the CPU too, so one venv serves the submit host and the GPU nodes:
#   make venv-gpu-pascal && source .venv-gpu-pascal/bin/activate
PASCAL := .venv-gpu-pascal
venv-gpu-pascal: $(PASCAL)/.installed
$(PASCAL)/.installed: requirements.lock pyproject.toml envs/sync_from_lock.py
	$(PYTHON) -m venv $(PASCAL)
	$(PASCAL)/bin/python -m pip install --quiet --upgrade pip
	$(PYTHON) envs/sync_from_lock.py --requirements gpu-pascal > $(PASCAL)/requirements.txt
	$(PASCAL)/bin/python -m pip install --quiet -r $(PASCAL)/requirements.txt
	$(PASCAL)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

demo: $(STAMP)
	$(BIN)/snakemake --cores all

test: lint
	$(BIN)/python -m pytest -q

# Style and workflow checks (also the first step of `make test`).
lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

clean-results:
	rm -rf results logs benchmarks .snakemake
