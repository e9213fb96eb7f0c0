# Two commands on a fresh machine (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## Convert the shipped example VCF to a validated transaction Bundle in out/.
demo: $(STAMP)
	mkdir -p out
	$(BIN)/fhir-genomics convert examples/NA12878-panel.vcf.gz --purpose TREAT \
	    --patient-identifier 'https://hospital.test/mrn|MRN-0001' \
	    --issued 2026-01-15T09:30:00Z --validate --out out/NA12878-panel.bundle.json
	@echo "Bundle written to out/NA12878-panel.bundle.json"

## Lint, type-check and run the whole test suite (what CI runs).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

## Speed and memory benchmark (1,000,000-record synthetic VCF).
bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
