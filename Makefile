# litetool developer entry points. Everything runs from a virtual environment
# that this Makefile creates and fills from the package registries.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

AZURITE := .tools/node_modules/.bin/azurite-blob

.PHONY: demo test lint bench clean reliability

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The main job on an embedded default: replicate a demo database (with a small
# writer) to a local file replica, then restore it and compare.
demo: $(STAMP)
	$(PY) -m litetool.demo --dir demo

# The whole test suite: lint, architecture contracts, unit, property,
# integration (starts moto, SeaweedFS and Azurite itself) and TUI tests.
# Azurite (the Azure Blob emulator) comes from npm; the test suite starts it.
$(AZURITE):
	npm install --prefix .tools --no-audit --no-fund --save-exact azurite@3.35.0

test: $(STAMP) $(AZURITE)
	$(VENV)/bin/ruff check litetool tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -q -p no:cacheprovider

# The reliability suite's long mode (by hand: an hour or more): hundreds of
# kill -9 cycles, thousands of corruption trials, and the one-hour soak, which
# runs beside the rest (its writer is paced, so it leaves the CPU to them).
# It rewrites docs/reliability.md with its figures. CI runs the short mode in
# `make test`.
RELIABILITY_FIGURES := $(VENV)/reliability-figures.jsonl
SOAK_LOG := $(VENV)/reliability-soak.log
reliability: $(STAMP) $(AZURITE)
	rm -f $(RELIABILITY_FIGURES)
	export LITETOOL_RELIABILITY=long LITETOOL_RELIABILITY_FIGURES=$(RELIABILITY_FIGURES); \
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/reliability/test_soak.py >$(SOAK_LOG) 2>&1 & \
	soak=$$!; \
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/reliability \
		--ignore tests/reliability/test_soak.py; rest=$$?; \
	wait $$soak; soaked=$$?; cat $(SOAK_LOG); test $$rest -eq 0 && test $$soaked -eq 0
	$(PY) tests/reliability/report.py $(RELIABILITY_FIGURES) make reliability

bench: $(STAMP)
	$(PY) bench/startup.py
	$(PY) bench/wal_codec.py
	$(PY) bench/storage.py
	$(PY) bench/replication.py
	$(PY) bench/restore.py
	$(PY) bench/index_growth.py
	$(PY) bench/disk_bytes.py
	$(PY) bench/commit_time.py
	$(PY) bench/app_checkpoint.py

clean:
	rm -rf $(VENV) demo .tools
