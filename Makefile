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
	@start=$$(date +%s); $(PY) -m pytest -q --durations=25 tests; rc=$$?; \
	echo "[test] suite took $$(( $$(date +%s) - start )) s"; exit $$rc

# JupyterLab on 127.0.0.1 only, with a token (printed in the URL on start).
lab: $(PY)
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --no-browser --ServerApp.token=$${JUPYTER_TOKEN:-$$($(PY) -c 'import secrets; print(secrets.token_hex(16))')} --notebook-dir=.

# Retrain the shipped defaults into data/models/: the recogniser is design B of issue 33 (ledger runs r008-r010,
# 4.04 CPU-hours in bf16 on 2 cores): Whisper tiny.en's pretrained encoder made streaming, trained with fresh RNNT,
# CTC and <EOU> heads on the synthetic corpus + Asterisk's adapt_train half + channel variety (profile whisper_tiny,
# 1,800 steps, 1.83 CPU-h), then further with the open-vocabulary speech (6,000 SmolLM2 sentences written offline,
# ~20 min, spoken as corpus size "open", ~6 min; profile whisper_open, 1,000 steps, 0.81 CPU-h), then with the end of
# every training utterance hidden so that <EOU> comes while a stream is live (profile whisper_eou, 1,200 steps,
# 1.39 CPU-h), shipped by ship-asr: it beats the previous model on every dev split's WER, and was forced past the
# <EOU>-live gate at lookahead 13 (88.8 % [81.0, 93.6] against 93.9 %; README) (every run is appended to data/models/asr_small/ledger.json;
# design A's seven from-scratch stages, r001-r007, 13.5 CPU-h, stay there as history); then the
# two-pass end-pointer's arbitrator on that model (minutes); the domain LM (a 2.9 M-parameter Llama from random
# weights on the training text, minutes) -> data/models/lm_domain; the repair room's parser (the domain LM with
# three heads, 1,500 steps on sampled template texts and the recogniser's transcripts of 3,500 fresh dev-speaker
# sentences: ~5 min to render them, ~14 min to decode them once, ~8 min to train) -> data/models/repair_parser; the look-to-talk classifiers and fusion (features of 3,200 requests and side-talk
# utterances through the recogniser, then minutes of training) -> data/models/looktotalk; then the ESPnet contextual-block conformer in three
# stages (CTC weight 0.3, 1,200 steps, ~20 min; then CTC weight 0.7 from it, 5,500 steps, ~95 min; the shipped stages 1-2
# ran on the espeak-only corpus; then stage 3, the same tokenizer and every weight fine-tuned on the multi-engine
# corpus, 2,500 steps, ~55 min) -> data/models/asr_espnet_small; then the large TTS and its FastSpeech2 baseline on the
# expressive corpus of the target voice (rendered once, ~3 min; 33 min each on one thread: the shipped pair ran side
# by side) -> data/models/tts_ltts, data/models/tts_baseline; the stage-direction tagger
# (the domain LM fine-tuned, 10 min) -> data/models/tagger; the speech-to-speech LM in five stages (1,248 dialogues
# rendered and coded, ~3 min; then 20 + 20 + 0 + 40 + 15 min of training, stage 5 after rendering its rejected
# answers) -> data/models/s2s.
models: $(PY)
	$(PY) -m workbench train-asr --profile whisper_tiny --out data/cache/asr_whisper_tiny/export \
	    --note "design B (Whisper tiny.en encoder, streaming), bf16-mixed" trainer.precision=bf16-mixed trainer.max_steps=1800
	$(PY) -m workbench open-text
	$(PY) -m workbench corpus --size open
	$(PY) -m workbench train-asr --profile whisper_open --init-from data/cache/asr_whisper_tiny/export/model.nemo \
	    --out data/cache/asr_whisper_open/export --note "r008 + open-vocabulary speech" \
	    trainer.precision=bf16-mixed trainer.max_steps=1000
	$(PY) -m workbench train-asr --profile whisper_eou --init-from data/cache/asr_whisper_open/export/model.nemo \
	    --out data/cache/asr_whisper_eou/export --note "r009 with the end of every training utterance hidden" \
	    trainer.precision=bf16-mixed
	$(PY) -m workbench ship-asr --force data/cache/asr_whisper_eou/export   # forced past the <EOU> gate at [70,13] (README)
	$(PY) -m workbench train-arbitrator --n-train 800 --n-dev 200
	$(PY) -m workbench train-lm
	$(PY) -m workbench train-reranker
	$(PY) -m workbench train-parser
	$(PY) -m workbench train-looktotalk
	$(PY) -m workbench train-codec
	$(PY) -m workbench train-codec --peer soundstream
	$(PY) -m workbench train-tts --system ltts --minutes 70 --threads 1
	$(PY) -m workbench train-tts --system baseline --minutes 70 --threads 1
	$(PY) -m workbench train-tagger
	$(PY) -m workbench train-s2s
	$(PY) -m workbench train-asr --backend espnet --epochs 12 --iters-per-epoch 100 --n-eval 200 \
	    --out data/cache/asr_espnet_small_export/export
	$(PY) -m workbench train-asr --backend espnet --init-from data/cache/asr_espnet_small/exp/valid.acc.best.pth \
	    --exp-name exp_s2 --ctc-weight 0.7 --warmup-steps 1000 --epochs 22 --iters-per-epoch 250 \
	    --out data/cache/asr_espnet_s2_export
	$(PY) -m workbench train-asr --backend espnet --init-from data/cache/asr_espnet_s2_export/model.pth \
	    --tokenizer-from data/cache/asr_espnet_s2_export/bpe.model --exp-name exp_ft --ctc-weight 0.7 \
	    --warmup-steps 300 --epochs 10 --iters-per-epoch 250 --n-eval 200

lock:
	@bash tools/lock.sh

$(PY):
	@echo "no $(VENV): run 'make setup' first" >&2; exit 1

clean:
	rm -rf .pytest_cache reports/.staging-*
