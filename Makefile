# bisector: `make demo` and `make test` work on a fresh clone (they create .venv).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU wheel by default; CUDA users: make install TORCH_SPEC="torch==2.13.0" PIP_EXTRA="--index-url https://download.pytorch.org/whl/cu126"
TORCH_SPEC ?= torch==2.13.0
PIP_EXTRA ?=

.PHONY: install demo test test-slow test-all lint clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(PIP_EXTRA) "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]" "mlflow>=3.1,<3.18"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/bisector run recipes/tagger/good.yaml recipes/tagger/bad.yaml

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow -n 2 --dist loadfile

test-all: install
	$(PY) -m pytest -q -m ""

lint: install
	$(VENV)/bin/ruff check bisector runners tests benchmarks tools

clean:
	rm -rf .bisector .pytest_cache
