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
	$(VENV)/bin/pytest -q -p no:cacheprovider --durations=30

# The reliability suite's long mode (by hand: about an hour and a quarter on
# two cores): hundreds of kill -9 cycles, thousands of corruption trials,
# 100,000 fuzzing examples per codec and the one-hour soak. Three streams run
# side by side: the soak (its writer is paced), the fuzzers (one core), and the
# rest. It rewrites docs/reliability.md with its figures. CI runs the short
# mode in `make test`.
RELIABILITY_FIGURES := $(VENV)/reliability-figures.jsonl
RELIABILITY_LOGS := $(VENV)/reliability
FUZZERS := tests/reliability/test_hostile.py tests/reliability/test_hostile_input.py
reliability: $(STAMP) $(AZURITE)
	rm -rf $(RELIABILITY_FIGURES) $(RELIABILITY_LOGS) && mkdir -p $(RELIABILITY_LOGS)
	date +%s > $(RELIABILITY_LOGS)/started
	export LITETOOL_RELIABILITY=long LITETOOL_RELIABILITY_FIGURES=$(RELIABILITY_FIGURES); \
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/reliability/test_soak.py \
		>$(RELIABILITY_LOGS)/soak.log 2>&1 & soak=$$!; \
	$(VENV)/bin/pytest -q -p no:cacheprovider $(FUZZERS) \
		>$(RELIABILITY_LOGS)/fuzz.log 2>&1 & fuzz=$$!; \
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/reliability \
		--ignore tests/reliability/test_soak.py $(addprefix --ignore ,$(FUZZERS)); rest=$$?; \
	wait $$fuzz; fuzzed=$$?; wait $$soak; soaked=$$?; \
	cat $(RELIABILITY_LOGS)/fuzz.log $(RELIABILITY_LOGS)/soak.log; \
	test $$rest -eq 0 && test $$fuzzed -eq 0 && test $$soaked -eq 0
	$(PY) tests/reliability/report.py --started $$(cat $(RELIABILITY_LOGS)/started) \
		$(RELIABILITY_FIGURES) make reliability

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
