"""Real human speech with transcripts, from Debian packages (no download at run time).

- ``asterisk:en``: Asterisk's English IVR prompts (``asterisk-core-sounds-en-wav`` + ``asterisk-core-sounds-en``
  for the transcript file): one female speaker, 8 kHz telephone audio, ~560 prompts, 25 min; CC-BY-SA-3.0.
- ``pocketsphinx:librivox``: five LibriVox clips read aloud (``pocketsphinx-testdata``), 16 kHz; BSD-2.
- ``pocketsphinx:cards``: five short "ten of clubs" commands from the same package.

Out of domain for the workbench's models, on purpose: the distance from synthetic to real speech shows.
Opened through ``open_dataset("asterisk:en")``; the audio is resampled to 16 kHz once into
``data/cache/real/`` beside a NeMo manifest.

Asterisk's one speaker is cut into fixed halves by a hash of the prompt's name (``asterisk_half``): the
``heldout`` half is only ever scored; the other half may adapt a model to a human voice (``adapt_train``) and
choose among runs (``adapt_dev``). ``open_dataset("asterisk:en", "heldout")`` opens one part. PocketSphinx's
clips are never trained on.
"""
from __future__ import annotations

import gzip
import os
import re
import zlib
from pathlib import Path

from ..audio import MODEL_SAMPLE_RATE, load_audio, save_wav

CACHE = Path(os.environ.get("WORKBENCH_CACHE") or Path(__file__).resolve().parents[2] / "data" / "cache") / "real"

ASTERISK_WAV = Path("/usr/share/asterisk/sounds/en")
ASTERISK_TXT = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")

REAL = {"asterisk": {"en": ("asterisk-core-sounds-en-wav asterisk-core-sounds-en", "CC-BY-SA-3.0")},
        "pocketsphinx": {"librivox": ("pocketsphinx-testdata", "BSD-2-Clause"),
                         "cards": ("pocketsphinx-testdata", "BSD-2-Clause")}}


ASTERISK_PARTS = ("adapt_train", "adapt_dev", "heldout")


def asterisk_half(uid: str) -> str:
    """The fixed part of an Asterisk prompt: ``heldout`` (half), ``adapt_dev`` (a tenth) or ``adapt_train`` (the
    rest), by CRC-32 of its name, so every machine and every session cuts the same way."""
    h = zlib.crc32(uid.encode()) % 20
    return "heldout" if h < 10 else "adapt_dev" if h < 12 else "adapt_train"


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


def real_texts() -> list[str]:
    """The transcripts of every real recording the project evaluates on (every source whose package is
    installed), without touching their audio: what text written for training must never be."""
    out = []
    for reader in (_asterisk, lambda: _pocketsphinx("librivox"), lambda: _pocketsphinx("cards")):
        try:
            out += [text for _, _, text in reader()]
        except RealSpeechUnavailableError:
            pass
    return out


def real_entries(name: str, part: str, cache: Path = CACHE) -> list[dict]:
    """NeMo manifest entries for a real-speech set, its audio resampled to 16 kHz into ``cache`` once."""
    from .manifest import read_manifest, write_manifest
    if name not in REAL or part not in REAL[name]:
        known = ", ".join(f"{n}:{p}" for n in REAL for p in REAL[n])
        raise RealSpeechUnavailableError(f"no real-speech set {name}:{part}; known: {known}")
    items = _asterisk() if name == "asterisk" else _pocketsphinx(part)
    folder = cache / f"{name}_{part}"
    manifest = folder / "manifest.json"
    if manifest.is_file():
        entries = read_manifest(manifest)
        if len(entries) == len(items) and all(e.get("split") == (asterisk_half(u) if name == "asterisk" else "test")
                                              for e, (u, _, _) in zip(entries, items)):
            return entries
    entries = []
    for uid, wav, text in items:
        audio = load_audio(wav)        # resampled to 16 kHz (Asterisk is 8 kHz)
        rel = f"wav/{uid}.wav"
        (folder / "wav").mkdir(parents=True, exist_ok=True)
        save_wav(folder / rel, audio)
        entries.append({"audio_filepath": rel, "id": f"{name}-{uid}", "duration": round(len(audio) / MODEL_SAMPLE_RATE, 4),
                        "text": text, "speaker": f"{name}:{part}", "engine": "human",
                        "split": asterisk_half(uid) if name == "asterisk" else "test",
                        "licence": REAL[name][part][1]})
    write_manifest(entries, manifest)
    return read_manifest(manifest)


def with_speech_bounds(entries: list[dict]) -> list[dict]:
    """The entries with ``speech_start``/``speech_end`` (seconds) from silero-vad, as the corpus's own entries
    carry them (the <EOU> labels of training need them). Computed once per file and kept beside its audio."""
    import json

    import numpy as np
    import torch

    from ..audio import load_silero_vad
    from ..files import write_text_atomic
    out, vad, cache = [], None, {}
    for e in entries:
        side = Path(e["audio_filepath"]).with_suffix(".bounds.json")
        if side not in cache:
            if side.is_file():
                cache[side] = json.loads(side.read_text())
            else:
                if vad is None:
                    vad = load_silero_vad()
                from silero_vad import get_speech_timestamps
                x = torch.from_numpy(np.asarray(load_audio(e["audio_filepath"]), np.float32))
                ts = get_speech_timestamps(x, vad, sampling_rate=MODEL_SAMPLE_RATE, return_seconds=True)
                bounds = [ts[0]["start"], ts[-1]["end"]] if ts else [0.0, float(e["duration"])]
                cache[side] = [round(float(b), 3) for b in bounds]
                write_text_atomic(side, json.dumps(cache[side]))
        start, end = cache[side]
        out.append({**e, "speech_start": start, "speech_end": min(end, float(e["duration"]))})
    return out


def spoken_form(text: str) -> str:
    """A prompt's transcript as the corpus writes its texts (lower case, words only, numbers spelled out), so
    training targets use the tokenizer's pieces: "Press 1 now." -> "press one now"; notes in brackets or
    parentheses ("(note: does not say ...)") are not speech and go. Scoring never needs it (the WER normaliser
    treats both forms alike)."""
    from num2words import num2words
    t = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", text)
    t = t.replace("&", " and ").replace("%", " percent ")
    t = re.sub(r"(\d+)(st|nd|rd|th)\b", lambda m: num2words(int(m.group(1)), to="ordinal"), t)
    t = re.sub(r"\d+", lambda m: " " + num2words(int(m.group(0))) + " ", t)
    t = re.sub(r"[^a-z' ]+", " ", t.lower().replace("-", " "))
    return re.sub(r"\s+", " ", t).strip()
