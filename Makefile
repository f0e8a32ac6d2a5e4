PYTHON ?= python

.PHONY: install test test-all lint format type check-codestyle bench

install:
	$(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install ".[all,tests]"

test:
	$(PYTHON) -m pytest -m "not slow" -n 2 tests

test-all:
	$(PYTHON) -m pytest -n 2 tests

lint:
	$(PYTHON) -m ruff check sb3_sacae tests examples benchmarks

format:
	$(PYTHON) -m ruff check --fix sb3_sacae tests examples benchmarks
	$(PYTHON) -m black sb3_sacae tests examples benchmarks

check-codestyle:
	$(PYTHON) -m black --check sb3_sacae tests examples benchmarks

type:
	$(PYTHON) -m mypy sb3_sacae

bench:
	$(PYTHON) benchmarks/throughput.py
	$(PYTHON) benchmarks/replay_memory.py
