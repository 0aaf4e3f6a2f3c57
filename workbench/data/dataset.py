"""One way in for every corpus: ours, the user's NeMo manifest or lhotse CutSet, or a public one.

The lingua franca is the NeMo manifest line (a dict with ``audio_filepath``, ``duration``, ``text``,
plus our optional ground truth: ``words``, ``speech_end``, ``pauses``, ``noise``, ``truncated`` ...),
because NeMo trains from it directly; a lhotse CutSet is the same data, converted both ways.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..audio import MODEL_SAMPLE_RATE, load_audio
from ..hub import reachable


from .manifest import (DEFAULT_ROOT, REQUIRED, CorpusUnavailableError, DatasetError, MissingFieldError,  # noqa: F401
                       cutset_to_entries, entries_to_cutset, read_manifest, require_fields, write_manifest)


@dataclass
class Dataset:
    """A list of manifest entries with the few operations every room needs."""
    entries: list[dict]
    name: str = "dataset"

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> dict:
        return self.entries[i]

    def __iter__(self) -> Iterator[dict]:
        return iter(self.entries)

    def audio(self, i: int, sample_rate: int = MODEL_SAMPLE_RATE) -> np.ndarray:
        """The entry's audio (its offset/duration window) as float32 mono at ``sample_rate``."""
        e = self.entries[i]
        x = load_audio(e["audio_filepath"], target_rate=sample_rate)
        a = int(round(float(e.get("offset", 0.0)) * sample_rate))
        return x[a:a + int(round(float(e["duration"]) * sample_rate))]

    def filter(self, keep: Callable[[dict], bool]) -> "Dataset":
        return Dataset([e for e in self.entries if keep(e)], self.name)

    @property
    def speakers(self) -> list[str]:
        return sorted({e.get("speaker", "unknown") for e in self.entries})

    @property
    def hours(self) -> float:
        return sum(float(e["duration"]) for e in self.entries) / 3600

    def to_cutset(self):
        return entries_to_cutset(self.entries)

    def write_manifest(self, path: str | os.PathLike) -> Path:
        return write_manifest(self.entries, path)

    def to_dataframe(self):
        """One row per utterance, with derived columns for plotting (pause totals, SNR, ...)."""
        import pandas as pd
        rows = []
        for e in self.entries:
            noise = e.get("noise") or {}
            rows.append({"id": e.get("id"), "speaker": e.get("speaker"), "split": e.get("split"),
                         "domain": e.get("domain"), "duration": e["duration"], "text": e["text"],
                         "n_words": len(e["text"].split()), "speech_end": e.get("speech_end"),
                         "n_pauses": len(e.get("pauses") or []),
                         "pause_s": sum(p["end"] - p["start"] for p in e.get("pauses") or []),
                         "noise": noise.get("type", "clean"), "snr_db": noise.get("snr_db"),
                         "truncated": e.get("truncated", False)})
        return pd.DataFrame(rows)


PUBLIC = {"librispeech", "slurp"}


def open_public(name: str, part: str | None = None, root: str | os.PathLike | None = None) -> Dataset:
    """A public corpus through lhotse's recipes: prepared from ``root`` if it is already there, else
    downloaded; offline, fails within seconds with a message saying what to put where."""
    from lhotse import recipes
    root = Path(root) if root else DEFAULT_ROOT.parent / "public"
    corpus_dir = root / {"librispeech": "LibriSpeech", "slurp": "slurp"}[name]
    if name == "librispeech":
        part = part or "dev-clean"
        if not (corpus_dir / part).is_dir():
            if not reachable(f"https://www.openslr.org/resources/12/{part}.tar.gz"):
                raise CorpusUnavailableError(
                    f"LibriSpeech {part} is not in {corpus_dir} and openslr.org cannot be reached from here. "
                    f"Download {part}.tar.gz from https://www.openslr.org/12 and extract it under {root}.")
            recipes.download_librispeech(root, dataset_parts=part)
        manifests = recipes.prepare_librispeech(corpus_dir, dataset_parts=part)
        m = manifests[part]
    else:
        if not corpus_dir.is_dir():
            if not reachable("https://github.com/pswietojanski/slurp"):
                raise CorpusUnavailableError(
                    f"SLURP is not in {corpus_dir} and github.com/zenodo cannot be reached from here. "
                    f"Fetch it with lhotse.recipes.download_slurp on a connected machine and copy it to {corpus_dir}.")
            recipes.download_slurp(root)
        manifests = recipes.prepare_slurp(corpus_dir)
        part = part or "devel"
        m = manifests[part]
    from lhotse import CutSet
    cuts = CutSet.from_manifests(recordings=m["recordings"], supervisions=m["supervisions"]).trim_to_supervisions()
    return Dataset(cutset_to_entries(cuts), f"{name}:{part}")


def open_dataset(source: str | os.PathLike, split: str | None = None) -> Dataset:
    """Open any corpus the same way.

    ``source``: a workbench corpus folder (with ``split``: train/dev/test/test_unseen_engine/test_unseen_text),
    a NeMo manifest (.json, .jsonl), a lhotse CutSet (.jsonl.gz / .jsonl), real speech from Debian packages
    (``"asterisk:en"``, ``"pocketsphinx:librivox"``, ``"pocketsphinx:cards"``; Asterisk's fixed halves with
    ``split="heldout"``, ``"adapt_train"`` or ``"adapt_dev"``), or a public corpus through lhotse
    (``"librispeech:dev-clean"`` / ``"slurp:devel"``).
    """
    s = str(source)
    from .real import REAL, real_entries
    if ":" in s and s.split(":", 1)[0] in REAL:
        name, part = s.split(":", 1)
        entries = real_entries(name, part)
        if split:
            have = sorted({e["split"] for e in entries})
            entries = [e for e in entries if e["split"] == split]
            if not entries:
                raise DatasetError(f"{s} has no part {split!r}; its parts are {have}")
            return Dataset(entries, f"{s}:{split}")
        return Dataset(entries, s)
    if ":" in s and s.split(":", 1)[0] in PUBLIC:
        name, part = s.split(":", 1)
        return open_public(name, part or None)
    p = Path(s)
    if p.is_dir():
        if not (p / "corpus.json").is_file():
            raise DatasetError(f"{p} is not a workbench corpus (no corpus.json); pass a manifest or CutSet file")
        splits = [split] if split else ["train", "dev", "test"]
        entries = []
        for sp in splits:
            m = p / f"{sp}.json"
            if not m.exists():
                raise DatasetError(f"{p} has no split {sp!r} (expected {m})")
            entries += read_manifest(m)
        return Dataset(entries, f"{p.name}:{split or 'all'}")
    if not p.exists():
        raise DatasetError(f"no corpus, manifest or CutSet at {p}")
    if p.name.endswith(".jsonl.gz") or _looks_like_cutset(p):
        from lhotse import CutSet
        try:
            cuts = CutSet.from_file(p)
        except Exception as e:
            raise DatasetError(f"{p}: not a readable lhotse CutSet ({type(e).__name__}: {e})") from None
        entries = cutset_to_entries(cuts, base_dir=p.parent)
    else:
        entries = read_manifest(p)
    if split:
        have = sorted({str(e["split"]) for e in entries if e.get("split") is not None})
        if not have:
            raise DatasetError(f"{p} has no splits (no 'split' field in its lines); open it without split=, "
                               f"or add a 'split' field (train/dev/test) to each line")
        entries = [e for e in entries if e.get("split") == split]
        if not entries:
            raise DatasetError(f"{p} has no utterance of split {split!r}; its splits are {have}")
    return Dataset(entries, p.stem)


def _looks_like_cutset(p: Path) -> bool:
    """A .jsonl whose first line is a lhotse cut (has ``type`` and ``recording``) rather than a manifest line."""
    try:
        with open(p) as f:
            first = json.loads(f.readline() or "{}")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return False
    return "recording" in first and "audio_filepath" not in first


def is_clean(entry: dict) -> bool:
    """Clean speech: no added noise and not a truncated prefix (the subset the WER bar is set on)."""
    return not entry.get("noise") and not entry.get("truncated")
