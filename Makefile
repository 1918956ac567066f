# The two commands of the README:  `make demo`  (install + main job)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test bench lint

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[llm,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/mirrorpo demo

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/bench_losses.py

lint: install
	$(VENV)/bin/ruff check src tests scripts benchmarks
