PYTHON ?= python

.PHONY: install demo test test-slow test-all lint format type check-codestyle bench docs report

# torch first and pinned: an unpinned torch pulls several GB of CUDA wheels. A real (non-editable) install, so the
# rl_zoo3 start-up hook (.pth) is installed too.
install:
	bash scripts/install_system_deps.sh
	$(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install ".[all,tests,docs]"

# The main job: a short pixel Pendulum run with a progress bar; saves the model and a learning-curve plot
demo:
	$(PYTHON) examples/train_pendulum_pixels.py --output runs/demo

# one torch/OpenMP thread per test worker (subprocesses too): -n 2 already uses both cores
test:
	OMP_NUM_THREADS=1 $(PYTHON) -m pytest -m "not slow" -n 2 tests

# installed-wheel CLI, PostgreSQL and Optuna heartbeat tests (about a minute)
test-slow:
	OMP_NUM_THREADS=1 $(PYTHON) -m pytest -m slow -n 2 tests

test-all:
	OMP_NUM_THREADS=1 $(PYTHON) -m pytest -n 2 tests

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

# The documentation site (pip install ".[docs]"); warnings are errors. Checks first that the generated results pages
# and the README's results table are up to date with benchmarks/results/.
docs:
	$(PYTHON) benchmarks/report.py --check
	$(PYTHON) -m sphinx -W --keep-going -b html docs docs/_build/html

# Regenerate the results and performance pages, the plots and the README's results table from benchmarks/results/
report:
	$(PYTHON) benchmarks/report.py
