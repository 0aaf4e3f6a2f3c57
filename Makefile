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

# Retrain the shipped defaults into data/models/: stage 1 CTC-only encoder pre-training (profile small_ctc,
# ~58 min on 2 CPU cores, kept in data/cache), stage 2 the hybrid RNNT+CTC <EOU> model from it (profile small,
# ~34 min), stage 3 the same trained further (profile small_ft, ~67 min), stage 4 on the multi-engine corpus with
# noise, truncation, SpecAugment and speed perturbation (profile small_mx, ~60 min), stage 5 the same again for
# 85 min (944 steps on contended cores in stop 14), stage 6 the same with a full cosine over 2,200 steps (89 min alone,
# stop 16) -> data/models/asr_small, stage 7 (profile small_ad: + Asterisk's adapt_train part and channel variety,
# 2,000 steps, 76 min alone, 2.1 CPU-hours, stop 33), shipped by ship-asr because it beats stage 6 on every dev split
# (every run is appended to data/models/asr_small/ledger.json)
# (the shipped stages 1-3 ran on the stop-12 corpus, espeak-ng only; rerun today they read the multi-engine one); then the
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
	$(PY) -m workbench train-asr --profile small_ctc --out data/cache/asr_small_ctc/export
	$(PY) -m workbench train-asr --profile small --init-from data/cache/asr_small_ctc/export/model.nemo \
	    --out data/cache/asr_small_s2/export
	$(PY) -m workbench train-asr --profile small_ft --init-from data/cache/asr_small_s2/export/model.nemo \
	    --out data/cache/asr_small_ft/export
	$(PY) -m workbench train-asr --profile small_mx --init-from data/cache/asr_small_ft/export/model.nemo \
	    --out data/cache/asr_small_mx/export
	$(PY) -m workbench train-asr --profile small_mx --init-from data/cache/asr_small_mx/export/model.nemo \
	    --work data/cache/asr_small_mx5 --out data/cache/asr_small_mx5/export trainer.max_steps=2200 \
	    trainer.max_time=00:01:25:00 trainer.val_check_interval=550 trainer.limit_val_batches=12
	$(PY) -m workbench train-asr --profile small_mx --init-from data/cache/asr_small_mx5/export/model.nemo \
	    --work data/cache/asr_small_mx6 --out data/models/asr_small trainer.max_steps=2200 \
	    trainer.max_time=00:01:30:00 trainer.val_check_interval=550 trainer.limit_val_batches=12 \
	    model.optim.sched.warmup_steps=100
	$(PY) -m workbench train-asr --profile small_ad --init-from data/models/asr_small/model.nemo \
	    --work data/cache/asr_small_ad --out data/cache/asr_small_ad/export \
	    --note "real speech (Asterisk adapt_train x3) and channel variety" trainer.max_steps=2000
	$(PY) -m workbench ship-asr data/cache/asr_small_ad/export
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
