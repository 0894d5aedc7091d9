# Two entry points on a fresh machine: `make book` and `make test` (see README.md).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RECIPES := $(wildcard notebooks/*.py)

ARCHIVE := artifacts/pairzoo-ci.zip

.PHONY: venv notebooks book test lint clean benchmark browser-test

$(STAMP): requirements.txt requirements-lock.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -c requirements-lock.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

venv: $(STAMP)

notebooks: $(STAMP)
	$(BIN)/jupytext --quiet --sync $(RECIPES)

book: notebooks
	$(BIN)/python -m pairzoo.preexecute --jobs 2
	$(BIN)/jupyter-book build . -n -W --keep-going
	$(BIN)/pairzoo validate artifacts/ci
	$(BIN)/pairzoo package artifacts/ci -o $(ARCHIVE)

browser-test: $(STAMP)
	PAIRZOO_REQUIRE_BOOK=1 $(BIN)/pytest tests/test_browser.py \
		tests/test_evaluate.py::test_every_pair_of_the_built_ci_set_scores_as_its_manifest_says

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

benchmark: $(STAMP)
	$(BIN)/python benchmarks/book_build.py

clean:
	rm -rf _build artifacts/ci $(ARCHIVE) ipynb
