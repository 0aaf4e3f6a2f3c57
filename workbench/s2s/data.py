"""The speech-to-speech training data: dialogues (dialogues.py) coded by the learned encoding and tokenised by the
text LM, and the tasks the five stages learn from, written as layout segments.

Why the tasks look as they do: stage 1 learns speech alone (``continuation``: codes after codes), stage 2 learns
that text and speech of the same words mean the same (``asr``, ``tts``, and ``interleaved``: a turn whose words
switch between text and speech at word boundaries, SpiritLM's recipe, the word times from espeak-ng's events),
stage 4 learns the spoken dialogue (``s2s``: request speech -> answer text -> answer speech, and
``translation``) with the others kept in the mix.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .layout import Layout, Segment

CACHE = Path(os.environ.get("WORKBENCH_CACHE") or Path(__file__).resolve().parents[2] / "data" / "cache") / "s2s"


def _encode(args) -> dict:
    row, codec_dir = args
    from ..audio import load_audio
    from ..codec.model import load_codec
    global _CODEC
    if "_CODEC" not in globals() or _CODEC[0] != codec_dir:
        _CODEC = (codec_dir, load_codec(codec_dir))
    codec = _CODEC[1]
    out = dict(row)
    for side, key in (("request", "audio_filepath"), ("response", "response_audio_filepath")):
        out[f"{side}_codes"] = codec.encode(load_audio(row[key])).astype(np.int16)
    return out


def prepare(split: str, n: int, seed: int = 0, corpus_size: str = "default", codec_dir=None, workers: int = 2,
            cache: bool = True, root: Path = CACHE, log=print) -> list[dict]:
    """``n`` dialogues of ``split``, rendered (dialogues.build) and coded (``request_codes``, ``response_codes``:
    (n_q, frames) int16). Cached by its arguments; the audio stays under ``root`` for listening."""
    import torch
    from multiprocessing import get_context

    from . import dialogues
    codec_dir = str(Path(codec_dir).resolve()) if codec_dir else None
    key = f"{split}-{n}-s{seed}-{corpus_size}-{Path(codec_dir).name if codec_dir else 'codec'}"
    f = root / f"{key}.pt"
    if cache and f.is_file():
        return torch.load(f, weights_only=False)
    folder = dialogues.build(split, n, root / key, seed=seed, size=corpus_size, workers=workers)
    rows = dialogues.load(folder)
    jobs = [(r, codec_dir) for r in rows]
    if workers > 1:
        with get_context("spawn").Pool(workers) as pool:
            rows = pool.map(_encode, jobs, chunksize=8)
    else:
        rows = [_encode(j) for j in jobs]
    if cache:
        tmp = f.with_suffix(f".tmp{os.getpid()}")
        torch.save(rows, tmp)
        tmp.replace(f)
    return rows


# --- tasks as segments ------------------------------------------------------------------------------------------
def _ids(tok, text: str) -> tuple[int, ...]:
    """The text LM's tokens of ``text``, lower-cased as the corpus the domain LM learnt from."""
    return tuple(tok(text.lower(), add_special_tokens=False)["input_ids"])


def _codes(row: dict, side: str) -> np.ndarray:
    return np.asarray(row[f"{side}_codes"], np.int64)


def continuation(lay: Layout, row: dict, side: str = "response") -> list[Segment]:
    return [Segment(text=(lay.special("<continue>"),)), Segment(codes=_codes(row, side), learn=True)]


def asr(lay: Layout, tok, row: dict, side: str = "request") -> list[Segment]:
    text = row["text"] if side == "request" else row["response_text"]
    return [Segment(text=(lay.special("<asr>"),)), Segment(codes=_codes(row, side)),
            Segment(text=(lay.special("<answer>"),)), Segment(text=_ids(tok, text) + (lay.special("<end>"),), learn=True)]


def tts(lay: Layout, tok, row: dict) -> list[Segment]:
    return [Segment(text=(lay.special("<tts>"),) + _ids(tok, row["response_tagged"])),
            Segment(text=(lay.special("<speak>"),)), Segment(codes=_codes(row, "response"), learn=True)]


def interleaved(lay: Layout, tok, row: dict, rng: np.random.Generator, side: str = "response",
                frame_rate: float = 25.0) -> list[Segment]:
    """The turn's words in spans of 1-4, alternately as text and as the speech of the same words (cut at word
    times); every span learnt, so predicting across a switch needs what both modalities mean."""
    words = row["response_words" if side == "response" else "words"]
    codes = _codes(row, side)
    segs, i, as_text = [Segment(text=(lay.special("<continue>"),))], 0, bool(rng.random() < 0.5)
    while i < len(words):
        j = min(len(words), i + int(rng.integers(1, 5)))
        if as_text:
            segs.append(Segment(text=_ids(tok, " " .join(w for w, _, _ in words[i:j])), learn=True))
        else:
            a = int(round(words[i][1] * frame_rate))
            b = codes.shape[1] if j == len(words) else int(round(words[j][1] * frame_rate))
            if b > a:
                segs.append(Segment(codes=codes[:, a:b], learn=True))
        i, as_text = j, not as_text
    return segs


def s2s_prefix(lay: Layout, row: dict) -> list[Segment]:
    """What the model hears before it answers: the task and the request's speech."""
    task = "<translate>" if row.get("task", "dialogue").startswith("translate") else "<s2s>"
    return [Segment(text=(lay.special(task),)), Segment(codes=_codes(row, "request")),
            Segment(text=(lay.special("<answer>"),))]


def s2s(lay: Layout, tok, row: dict, codes: np.ndarray | None = None, text: str | None = None) -> list[Segment]:
    """Request speech -> the answer's tagged words (the inner monologue: what to say and how) -> its speech.
    ``codes``/``text``: another answer to the same request (stage 5's rejected one)."""
    words = _ids(tok, text if text is not None else row["response_tagged"])
    return s2s_prefix(lay, row) + [Segment(text=words, learn=True), Segment(text=(lay.special("<speak>"),), learn=True),
                                   Segment(codes=_codes(row, "response") if codes is None else codes, learn=True)]


# --- stage 5's rejected answers -----------------------------------------------------------------------------------
# the delivery that goes against each mood: excitement met flatly, annoyance met with excitement, tiredness too
AGAINST = {"excited": "calm", "annoyed": "excited", "tired": "excited"}


def _against(args) -> dict:
    row, codec_dir = args
    from ..tts.render import render_espeak
    from ..tts.styles import DELIVERIES, TAG
    global _CODEC
    from ..codec.model import load_codec
    if "_CODEC" not in globals() or _CODEC[0] != codec_dir:
        _CODEC = (codec_dir, load_codec(codec_dir))
    words = TAG.sub(lambda m: "" if m.group(1).strip().lower() in DELIVERIES else m.group(0), row["response_tagged"])
    tagged = f"[{AGAINST[row['arousal']]}] " + " ".join(words.split())
    return {"id": row["id"], "tagged": tagged,
            "codes": _CODEC[1].encode(render_espeak(tagged).audio).astype(np.int16)}


def against_mood(rows: list[dict], codec_dir=None, workers: int = 2, cache_key: str | None = None,
                 root: Path = CACHE) -> dict[str, dict]:
    """For every aroused dialogue turn, its answer's words delivered against the user's mood (``AGAINST``),
    rendered and coded: stage 5's rejected prosody. Keyed by turn id."""
    import torch
    from multiprocessing import get_context
    f = root / f"against-{cache_key}.pt" if cache_key else None
    if f is not None and f.is_file():
        return torch.load(f, weights_only=False)
    jobs = [(r, str(Path(codec_dir).resolve()) if codec_dir else None) for r in rows
            if r.get("task", "dialogue") == "dialogue" and r["arousal"] in AGAINST]
    if workers > 1 and len(jobs) > 1:
        with get_context("spawn").Pool(workers) as pool:
            out = pool.map(_against, jobs, chunksize=8)
    else:
        out = [_against(j) for j in jobs]
    res = {o["id"]: o for o in out}
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_suffix(f".tmp{os.getpid()}")
        torch.save(res, tmp)
        tmp.replace(f)
    return res


def preference_pairs(lay: Layout, tok, rows: list[dict], against: dict[str, dict], rng: np.random.Generator):
    """(chosen, rejected, kind) segment lists: every turn's right answer against another intent's answer
    ("content") and, where the user was aroused, against its own words delivered against the mood ("prosody")."""
    pairs = []
    intents = [tuple(f["intent"] for f in r["frames"]) for r in rows]
    for i, r in enumerate(rows):
        if r.get("task", "dialogue") != "dialogue":
            continue
        others = [j for j in range(len(rows)) if intents[j] != intents[i] and rows[j].get("task", "dialogue") == "dialogue"]
        if others:
            o = rows[others[int(rng.integers(len(others)))]]
            pairs.append((s2s(lay, tok, r), s2s(lay, tok, r, _codes(o, "response"), o["response_tagged"]), "content"))
        if r["id"] in against:
            a = against[r["id"]]
            pairs.append((s2s(lay, tok, r), s2s(lay, tok, r, np.asarray(a["codes"], np.int64), a["tagged"]), "prosody"))
    return pairs
