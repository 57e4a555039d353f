# gristmill: `make demo` and `make test` work on a fresh clone with only Python 3.11 and PyPI.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench check-schedule lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

TRAIN_STAMP := $(VENV)/.installed-train

# The test suite also trains a tiny BERT from the shards: the `train` extra (CPU torch).
$(TRAIN_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,train]"
	touch $(TRAIN_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/gristmill run sample/demo.yaml --overwrite

test: $(TRAIN_STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench.run

# The weekly refresh recipe (examples/cron) run for real twice on sample/ (~1 min).
check-schedule: $(STAMP)
	bash examples/check_schedule.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf out build *.egg-info .pytest_cache .ruff_cache
