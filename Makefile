# Brain LDM study. Two entry points (see README):
#   make study   set up, run every chapter with the full parameters into book/ (publishing results/), build the HTML
#   make test    set up, unit tests + every chapter with the quick parameters (papermill) + book build and checks
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PROFILE ?= full

.PHONY: setup study chapters book test unit notebooks clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	touch $@

setup: $(VENV)/.installed

# Run every chapter (papermill) into book/ with params/*.$(PROFILE).yaml, publishing results/, then build the book.
study: setup chapters book

chapters: setup
	$(PY) -m ldm_core.study --profile $(PROFILE) --out book

# Build the HTML from the executed chapters in book/ (a chapter not published yet gets a placeholder page) and check
# what a reader must never see.
book: setup
	$(PY) -m ldm_core.study.placeholders book
	$(VENV)/bin/jupyter-book build book/ -W -n --keep-going
	$(PY) -m ldm_core.study.bookcheck book _build/html

# Unit tests, every notebook with its quick parameters through papermill, then the book build and its checks.
test: setup
	$(PY) -m pytest -q
	$(MAKE) book

unit: setup
	$(PY) -m pytest -q -m "not notebook"

notebooks: setup
	$(PY) -m pytest -q -m notebook

clean:
	rm -rf _build
