"""What the end-pointers read, computed once per utterance so that threshold sweeps (and the tuning widget)
re-score in milliseconds: silero-vad speech probability per 32 ms window, and the streaming recogniser's
output per step (when it became available, P(<EOU>) per encoder frame, the encoder output, the partial
transcript's tokens). The recogniser runs exactly as deployed: chunk by chunk with its caches.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio import MODEL_SAMPLE_RATE, extend_after_speech
from ..events import Final, Partial


@dataclass
class Signals:
    utt_id: str
    text: str
    true_end: float                      # s, true end of speech (the corpus knows it exactly)
    audio_end: float                     # s, end of the recording
    words: tuple = ()                    # ((word, start, end), ...)
    pauses: tuple = ()                   # ((start, end, kind), ...) inside the utterance
    truncated: bool = False
    noise: str | None = None             # background noise kind mixed in (None: clean recording)
    vad_prob: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))   # per window
    vad_hop: float = 512 / MODEL_SAMPLE_RATE
    step_time: np.ndarray = field(default_factory=lambda: np.zeros(0))   # s of audio heard when each step ran
    step_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, int))   # encoder frames after each step
    eou_prob: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # per encoder frame
    frame_s: float = 0.08
    encoder: np.ndarray | None = None    # (frames, d) float16
    tokens: list = field(default_factory=list)   # partial tokens after each step
    final_text: str = ""                         # the recogniser's result once the stream closed (its 1-best)
    final_tokens: list = field(default_factory=list)

    def frame_available(self) -> np.ndarray:
        """For each encoder frame, the audio time at which the step that produced it ran."""
        return np.repeat(self.step_time, np.diff(np.concatenate([[0], self.step_frames])))


def _noise_kind(noise) -> str | None:
    """The corpus writes {type, snr_db} or null; other manifests may write a plain name."""
    if not noise:
        return None
    return str(noise.get("type", noise)) if isinstance(noise, dict) else str(noise)


def vad_windows(audio: np.ndarray) -> tuple[np.ndarray, float]:
    """silero-vad speech probability per 512-sample window (its bundled model, no download)."""
    from ..batching.engine import silero_probs
    return silero_probs(audio)


def asr_signals(events: list) -> dict:
    """Per-step arrays from a recogniser's Partial events (any backend that fills them)."""
    parts = [e for e in events if isinstance(e, Partial)]
    enc = [e.encoder_output for e in parts if e.encoder_output is not None and len(e.encoder_output)]
    eou = [e.eou_prob for e in parts if e.eou_prob is not None]
    return {"step_time": np.array([e.audio_end for e in parts]),
            "step_frames": np.array([e.encoder_frames for e in parts], dtype=int),
            "eou_prob": np.concatenate(eou).astype(np.float32) if eou else np.zeros(0, np.float32),
            "encoder": np.concatenate(enc).astype(np.float16) if enc else None,
            "tokens": [list(e.tokens) for e in parts]}


def compute_signals(rec, entries: list[dict], audios: list[np.ndarray], batch: int = 32,
                    keep_encoder: bool = True) -> list[Signals]:
    """Signals for every utterance: the recogniser run chunk by chunk (several streams per batched step)
    and silero-vad over the audio."""
    from ..asr.streaming import transcribe_batch
    from ..data import require_fields
    require_fields(entries, ("speech_end",), "end-pointing")        # word times are optional (WER cost of cut-offs)
    out = []
    for i in range(0, len(audios), batch):
        evs = transcribe_batch(rec, audios[i:i + batch])
        for e, a, ev in zip(entries[i:i + batch], audios[i:i + batch], evs):
            probs, hop = vad_windows(a)
            s = asr_signals(ev)
            if not keep_encoder:
                s["encoder"] = None
            fin = next((x for x in reversed(ev) if isinstance(x, Final)), None)
            if fin is not None and fin.nbest:
                s["final_text"], s["final_tokens"] = fin.text, list(fin.nbest[0].tokens)
            out.append(Signals(
                utt_id=str(e.get("id", len(out))), text=e["text"], true_end=float(e["speech_end"]),
                audio_end=len(a) / MODEL_SAMPLE_RATE,
                words=tuple((w["word"], float(w["start"]), float(w["end"])) for w in e.get("words", [])),
                pauses=tuple((float(p["start"]), float(p["end"]), p.get("kind", "")) for p in e.get("pauses", [])),
                truncated=bool(e.get("truncated")), noise=_noise_kind(e.get("noise")),
                vad_prob=probs, vad_hop=hop, frame_s=rec.frame_s, **s))
    return out


def split_signals(rec, corpus_size: str | Path, split: str, n: int, prefer_events: bool = False, seed: int = 0,
                  after_speech_s: float = 2.0):
    """Signals for ``n`` utterances of a split of the corpus of that size (or at that ``Path``) (with
    ``prefer_events``: those with pauses or truncation first, the rest at random: the arbitrator's training
    set), each recording continued to ``after_speech_s`` after its end of speech (``extend_after_speech``)."""
    from ..data import ensure_corpus, open_dataset
    ds = open_dataset(corpus_size if isinstance(corpus_size, Path) else ensure_corpus(corpus_size), split)
    idx = list(range(len(ds)))
    if prefer_events:
        rng = np.random.default_rng(seed)
        rng.shuffle(idx)
        idx.sort(key=lambda i: not (ds.entries[i].get("pauses") or ds.entries[i].get("truncated")))
    idx = idx[:min(n, len(ds))]
    audios = [extend_after_speech(ds.audio(i), float(ds.entries[i]["speech_end"]), after_speech_s) for i in idx]
    return compute_signals(rec, [ds.entries[i] for i in idx], audios)
