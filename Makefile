# speech-workbench: the three commands a new user runs, in this order:
#   make setup     .venv with the pinned stack + the Debian packages it needs
#   make reports   builds the default corpus if missing, then runs every notebook into reports/<date>/
#   make test      the whole test suite (what .ci/run runs after setup)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SIZE ?= default

.PHONY: setup corpus reports test lab lock models clean help
help:
	@sed -n '2,5p' Makefile

setup:
	@bash tools/setup.sh

corpus: $(PY)
	$(PY) -m workbench corpus --size $(SIZE)

reports: corpus
	$(PY) -m workbench report

test: $(PY)
	@start=$$(date +%s); $(PY) -m pytest -q tests; rc=$$?; \
	echo "[test] suite took $$(( $$(date +%s) - start )) s"; exit $$rc

# JupyterLab on 127.0.0.1 only, with a token (printed in the URL on start).
lab: $(PY)
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --no-browser --ServerApp.token=$${JUPYTER_TOKEN:-$$($(PY) -c 'import secrets; print(secrets.token_hex(16))')} --notebook-dir=.

# Retrain the shipped defaults into data/models/: stage 1 CTC-only encoder pre-training (profile small_ctc,
# ~58 min on 2 CPU cores, kept in data/cache), stage 2 the hybrid RNNT+CTC <EOU> model from it (profile small,
# ~34 min), stage 3 the same trained further (profile small_ft, ~67 min) -> data/models/asr_small; then the
# two-pass end-pointer's arbitrator on that model (minutes).
models: $(PY)
	$(PY) -m workbench train-asr --profile small_ctc --out data/cache/asr_small_ctc/export
	$(PY) -m workbench train-asr --profile small --init-from data/cache/asr_small_ctc/export/model.nemo \
	    --out data/cache/asr_small_s2/export
	$(PY) -m workbench train-asr --profile small_ft --init-from data/cache/asr_small_s2/export/model.nemo \
	    --out data/models/asr_small
	$(PY) -m workbench train-arbitrator --n-train 800 --n-dev 200

lock:
	@bash tools/lock.sh

$(PY):
	@echo "no $(VENV): run 'make setup' first" >&2; exit 1

clean:
	rm -rf .pytest_cache reports/.staging-*
