"""Real human speech with transcripts, from Debian packages (no download at run time).

- ``asterisk:en``: Asterisk's English IVR prompts (``asterisk-core-sounds-en-wav`` + ``asterisk-core-sounds-en``
  for the transcript file): one female speaker, 8 kHz telephone audio, ~560 prompts, 25 min; CC-BY-SA-3.0.
- ``pocketsphinx:librivox``: five LibriVox clips read aloud (``pocketsphinx-testdata``), 16 kHz; BSD-2.
- ``pocketsphinx:cards``: five short "ten of clubs" commands from the same package.

Out of domain for the workbench's models, on purpose: the distance from synthetic to real speech shows.
Opened through ``open_dataset("asterisk:en")``; the audio is resampled to 16 kHz once into
``data/cache/real/`` beside a NeMo manifest.
"""
from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

from ..audio import MODEL_SAMPLE_RATE, load_audio, save_wav

CACHE = Path(os.environ.get("WORKBENCH_CACHE") or Path(__file__).resolve().parents[2] / "data" / "cache") / "real"

ASTERISK_WAV = Path("/usr/share/asterisk/sounds/en")
ASTERISK_TXT = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")

REAL = {"asterisk": {"en": ("asterisk-core-sounds-en-wav asterisk-core-sounds-en", "CC-BY-SA-3.0")},
        "pocketsphinx": {"librivox": ("pocketsphinx-testdata", "BSD-2-Clause"),
                         "cards": ("pocketsphinx-testdata", "BSD-2-Clause")}}


class RealSpeechUnavailableError(RuntimeError):
    """A real-speech set whose Debian package is not installed (the message names it)."""


def _asterisk() -> list[tuple[str, Path, str]]:
    if not (ASTERISK_TXT.is_file() and ASTERISK_WAV.is_dir()):
        raise RealSpeechUnavailableError(
            "asterisk:en needs the Debian packages asterisk-core-sounds-en-wav and asterisk-core-sounds-en "
            "(make setup installs them): apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-en")
    out = []
    for line in gzip.open(ASTERISK_TXT, "rt", encoding="utf-8", errors="replace"):
        if line.startswith(";") or ":" not in line:
            continue
        name, text = line.split(":", 1)
        text = text.strip()
        wav = ASTERISK_WAV / f"{name.strip()}.wav"
        if text and not text.startswith("[") and wav.is_file():    # "[beep tone]": not speech
            out.append((name.strip().replace("/", "_"), wav, text))
    return out


def _pocketsphinx(part: str) -> list[tuple[str, Path, str]]:
    folder = POCKETSPHINX / part
    trans = folder / ("transcription" if part == "librivox" else f"{part}.transcription")
    if not trans.is_file():
        raise RealSpeechUnavailableError(
            f"pocketsphinx:{part} needs the Debian package pocketsphinx-testdata (make setup installs it): "
            f"apt-get install pocketsphinx-testdata")
    out = []
    for line in trans.read_text().splitlines():
        m = re.match(r"\s*(?:<s>)?(.*?)(?:</s>)?\s*\(([^)]+)\)\s*$", line)
        if m and (folder / f"{m.group(2)}.wav").is_file():
            out.append((m.group(2), folder / f"{m.group(2)}.wav", m.group(1).strip()))
    return out


def real_entries(name: str, part: str, cache: Path = CACHE) -> list[dict]:
    """NeMo manifest entries for a real-speech set, its audio resampled to 16 kHz into ``cache`` once."""
    from .dataset import read_manifest, write_manifest
    if name not in REAL or part not in REAL[name]:
        known = ", ".join(f"{n}:{p}" for n in REAL for p in REAL[n])
        raise RealSpeechUnavailableError(f"no real-speech set {name}:{part}; known: {known}")
    items = _asterisk() if name == "asterisk" else _pocketsphinx(part)
    folder = cache / f"{name}_{part}"
    manifest = folder / "manifest.json"
    if manifest.is_file():
        entries = read_manifest(manifest)
        if len(entries) == len(items):
            return entries
    entries = []
    for uid, wav, text in items:
        audio = load_audio(wav)        # resampled to 16 kHz (Asterisk is 8 kHz)
        rel = f"wav/{uid}.wav"
        (folder / "wav").mkdir(parents=True, exist_ok=True)
        save_wav(folder / rel, audio)
        entries.append({"audio_filepath": rel, "id": f"{name}-{uid}", "duration": round(len(audio) / MODEL_SAMPLE_RATE, 4),
                        "text": text, "speaker": f"{name}:{part}", "engine": "human", "split": "test",
                        "licence": REAL[name][part][1]})
    write_manifest(entries, manifest)
    return read_manifest(manifest)
