#!/usr/bin/env bash
# make setup: system packages + .venv with the pinned stack + workbench (editable).
# Idempotent: a second run checks a stamp (hash of the lock and pyproject) and returns in seconds.
set -euo pipefail
start=$(date +%s)
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
LOCK=requirements.lock
APT_PACKAGES=(espeak-ng sox ffmpeg chromium    # synthesis, audio tools, torchcodec's FFmpeg, the browser tests
                                                # (Playwright drives Debian's chromium: never `playwright install`)
  flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts     # the corpus's other synthesisers
  asterisk-core-sounds-en-wav asterisk-core-sounds-en pocketsphinx-testdata)  # real recorded speech (evaluation)

say() { printf '[setup] %s\n' "$*"; }

# 1. System packages --------------------------------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[setup] ERROR: missing system packages: ${missing[*]}" >&2
    echo "[setup] install them, then run 'make setup' again:" >&2
    echo "          sudo apt-get install -y ${missing[*]}      (Debian/Ubuntu)" >&2
    echo "        (conda users: conda install -c conda-forge espeak-ng sox ffmpeg)" >&2
    exit 1
  fi
fi

# 2. Python venv ------------------------------------------------------------------------------------
if ! command -v "$PYTHON" >/dev/null; then
  echo "[setup] ERROR: $PYTHON not found; the stack is pinned for Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
stamp_want=$(cat "$LOCK" pyproject.toml | sha256sum | cut -c1-16)
stamp_file="$VENV/.workbench-stamp"
if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp_want" ] && [ -x "$VENV/bin/python" ]; then
  say "venv $VENV is up to date with $LOCK"
else
  # The venv takes ~6.5 GB (torch 2.11 is the CUDA build: torchaudio, which ESPnet imports, exists only
  # for it). pip's wheel cache would add ~2.7 GB more, so it is off; check the room first and say so.
  need_kb=$((7 * 1024 * 1024))
  mkdir -p "$(dirname "$VENV")"
  free_kb=$(df -Pk "$(dirname "$VENV")" | awk 'NR==2 {print $4}')
  if [ ! -x "$VENV/bin/python" ] && [ -n "$free_kb" ] && [ "$free_kb" -lt "$need_kb" ]; then
    echo "[setup] ERROR: $(( free_kb / 1024 )) MB free where $VENV goes; the pinned stack needs ~7 GB." >&2
    echo "[setup]        free some space (old clones' .venv folders?) or set VENV=/path/with/room" >&2
    exit 1
  fi
  [ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
  say "installing the pinned stack from $LOCK (cold: a few minutes, ~2.7 GB download, 6.5 GB installed)"
  # --no-deps: the lock is complete; the resolver would otherwise trip on the setuptools conflict.
  # (this machine's pip config may list local indexes that do not exist: drop pip's warning per package)
  "$VENV/bin/pip" install -q --no-cache-dir --no-deps --progress-bar off -r "$LOCK" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  "$VENV/bin/pip" install -q --no-cache-dir --no-deps --no-build-isolation -e .
  echo "$stamp_want" > "$stamp_file"
fi
# 3. The camera widget's face mesh (npm @mediapipe/face_mesh, checked against the registry's sha512) -------
"$VENV/bin/python" -m workbench.widgets.assets >/dev/null || {
  echo "[setup] ERROR: could not vendor the face mesh from registry.npmjs.org (the camera widget needs it);" >&2
  echo "[setup]        offline: copy face_mesh-<version>.tgz here and run: $VENV/bin/python -c \"from workbench.widgets.assets import vendor; vendor(tarball='face_mesh-<version>.tgz')\"" >&2
  exit 1; }
"$VENV/bin/python" -m workbench --help >/dev/null
say "done in $(( $(date +%s) - start )) s  (activate: source $VENV/bin/activate)"
