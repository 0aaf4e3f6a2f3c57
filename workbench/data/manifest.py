"""The manifest: one utterance per line as NeMo reads it (``audio_filepath``, ``duration``, ``text``, plus our
optional ground truth: ``words``, ``speech_end``, ``pauses``, ``noise``, ``truncated`` ...), read and written
whole or not at all, and converted both ways to a lhotse CutSet. Every room reads its data through here.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..audio import audio_info

# WORKBENCH_CORPUS_ROOT moves every corpus elsewhere (a big disk; the tests' temporary folder).
DEFAULT_ROOT = Path(os.environ.get("WORKBENCH_CORPUS_ROOT") or Path(__file__).resolve().parents[2] / "data" / "corpus")


class DatasetError(ValueError):
    """A manifest or CutSet that cannot be read, with the file and line that are wrong."""


class MissingFieldError(DatasetError):
    """A room needs a field (word times, the true end of speech) that the user's manifest does not carry."""


def require_fields(entries: list[dict], fields: tuple[str, ...], room: str) -> None:
    """Raise :class:`MissingFieldError` naming the first field and utterance that lack it (rooms that need
    ground truth call this; rooms that only need audio and text do not)."""
    for f in fields:
        for e in entries:
            if e.get(f) is None:
                raise MissingFieldError(
                    f"{room} needs {f!r} on every utterance; {e.get('id') or e.get('audio_filepath')} has none "
                    f"(the workbench corpus has it; for your own data add it to the manifest, e.g. word times from "
                    f"a forced aligner, speech_end = the last word's end)")


class CorpusUnavailableError(RuntimeError):
    """A public corpus that is neither on disk nor downloadable from here."""


REQUIRED = ("audio_filepath", "duration", "text")


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """NeMo JSONL manifest -> entries with absolute audio paths (relative ones are taken relative to
    the manifest's folder, as NeMo does)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"manifest not found: {path}")
    entries = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except json.JSONDecodeError as err:
                raise DatasetError(f"{path}:{n}: not valid JSON ({err.msg})") from None
            missing = [k for k in REQUIRED if k not in e]
            if missing:
                raise DatasetError(f"{path}:{n}: missing field(s) {missing} (a NeMo manifest line needs {list(REQUIRED)})")
            p = Path(e["audio_filepath"])
            e["audio_filepath"] = str(p if p.is_absolute() else (path.parent / p).resolve())
            e.setdefault("id", Path(e["audio_filepath"]).stem if "offset" not in e else f"{Path(e['audio_filepath']).stem}-{n}")
            entries.append(e)
    return entries


def write_manifest(entries: list[dict], path: str | os.PathLike) -> Path:
    """JSONL, written to a temporary name and moved into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        for e in entries:
            f.write(json.dumps(e) + "\n")
    os.replace(tmp, path)
    return path


_CORE = {"audio_filepath", "duration", "text", "offset", "id", "speaker", "words"}


def entries_to_cutset(entries: list[dict], base_dir: str | os.PathLike | None = None,
                      relative_to: str | os.PathLike | None = None):
    """Manifest entries -> lhotse CutSet (Recording + SupervisionSegment with word alignment; the other
    fields go into the supervision's ``custom``). ``base_dir`` resolves relative audio paths;
    ``relative_to`` writes paths relative to a folder, so a corpus can be moved as a whole."""
    from lhotse import AudioSource, CutSet, Recording, SupervisionSegment
    from lhotse.supervision import AlignmentItem
    from lhotse.cut import MonoCut

    cuts = []
    for e in entries:
        p = Path(e["audio_filepath"])
        if not p.is_absolute() and base_dir is not None:
            p = Path(base_dir) / p
        src = os.path.relpath(p, relative_to) if relative_to is not None else str(p)
        offset = float(e.get("offset", 0.0))
        dur = float(e["duration"])
        rid = e.get("id", p.stem)
        sr, frames, channels = audio_info(p)   # the header is the truth (the user's files need not be 16 kHz)
        rec = Recording(id=rid, sources=[AudioSource(type="file", channels=list(range(channels)), source=src)],
                        sampling_rate=sr, num_samples=frames, duration=frames / sr)
        align = None
        if e.get("words"):
            align = {"word": [AlignmentItem(symbol=w["word"], start=w["start"], duration=round(w["end"] - w["start"], 4))
                              for w in e["words"]]}
        custom = {k: v for k, v in e.items() if k not in _CORE}
        fillers = [i for i, w in enumerate(e.get("words") or []) if w.get("filler")]
        if fillers:   # an AlignmentItem has no place for it
            custom["filler_words"] = fillers
        sup = SupervisionSegment(id=rid, recording_id=rid, start=0.0, duration=dur, channel=0, text=e["text"],
                                 speaker=e.get("speaker"), alignment=align, custom=custom or None)
        cuts.append(MonoCut(id=rid, start=offset, duration=dur, channel=0, recording=rec, supervisions=[sup]))
    return CutSet.from_cuts(cuts)


def cutset_to_entries(cuts, base_dir: str | os.PathLike | None = None) -> list[dict]:
    """lhotse CutSet -> manifest entries. Needs cuts backed by audio files (the usual case on disk)."""
    out = []
    for cut in cuts:
        rec = cut.recording
        if rec is None or len(rec.sources) != 1 or rec.sources[0].type != "file":
            raise DatasetError(f"cut {cut.id}: only cuts backed by one audio file can be used as a manifest")
        p = Path(rec.sources[0].source)
        if not p.is_absolute() and base_dir is not None:
            p = (Path(base_dir) / p).resolve()
        sup = cut.supervisions[0] if cut.supervisions else None
        e = {"audio_filepath": str(p), "duration": round(cut.duration, 4), "offset": cut.start,
             "text": " ".join(s.text or "" for s in cut.supervisions).strip(), "id": cut.id}
        if cut.start == 0:
            del e["offset"]
        if sup is not None:
            if sup.speaker:
                e["speaker"] = sup.speaker
            if sup.alignment and "word" in sup.alignment:
                e["words"] = [{"word": a.symbol, "start": round(a.start, 4), "end": round(a.start + a.duration, 4)}
                              for a in sup.alignment["word"]]
            custom = dict(sup.custom or {})
            for i in custom.pop("filler_words", []):
                e["words"][i]["filler"] = True
            e.update(custom)
        out.append(e)
    return out
