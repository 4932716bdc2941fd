# Everything installs into .venv from PyPI; only Python 3.11+ must be on the machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo dev test lint bench clean lock

$(BIN)/nudge: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/nudge

demo: install
	$(BIN)/nudge dev --demo

dev: install
	$(BIN)/nudge dev

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/stream_throughput.py
	$(BIN)/python benchmarks/trigger_latency.py
	$(BIN)/python benchmarks/delivery_throughput.py
	$(BIN)/python benchmarks/import_catalog.py
	$(BIN)/python benchmarks/import_customers.py

# The hash-pinned runtime dependencies the Docker image installs; rerun after changing
# pyproject.toml's dependencies.
lock: install
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 --universal \
	  --quiet -o requirements.lock

clean:
	rm -rf $(VENV) .nudge .pytest_cache .mypy_cache .ruff_cache
