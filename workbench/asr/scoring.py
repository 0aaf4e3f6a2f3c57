"""One accounting for every recogniser compared (NeMo, ESPnet, and the peers of later rooms): the same
text normalisation before WER, per-utterance errors for intervals, and one real-time-factor function.

- ``normalize``: Whisper's English text normaliser (the field's convention for comparing systems that
  write "25" with ones that write "twenty five": numbers, spellings, contractions, fillers out), then jiwer's
  transforms, applied to the references and to every system's hypotheses alike.
- ``wer_ci``: corpus WER with a 95 % bootstrap interval over utterances (``workbench.stats``).
- ``real_time_factor``: any ``Recognizer`` (``workbench.asr.protocol``) fed the same preloaded audio in the
  same frames, after the same warm-up; file reading is outside the timer.
"""
from __future__ import annotations

import time

import numpy as np

from ..audio import MODEL_SAMPLE_RATE


def _transform():
    import jiwer
    return jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
                          jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])


_NORMALIZER = None


def normalize(text: str) -> str:
    global _NORMALIZER
    if not text or not text.strip():
        return ""
    if _NORMALIZER is None:
        from whisper_normalizer.english import EnglishTextNormalizer
        _NORMALIZER = EnglishTextNormalizer()
    text = _NORMALIZER(text)
    return " ".join(_transform()(text)[0]) if text.strip() else ""


def utterance_errors(refs: list[str], hyps: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per utterance: word errors (S + D + I) and reference words, after ``normalize``."""
    import jiwer
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    errors, words = np.zeros(len(refs)), np.zeros(len(refs))
    for i, (r, h) in enumerate(zip(refs, hyps)):
        r, h = normalize(r), normalize(h)
        words[i] = len(r.split())
        if not r:
            errors[i] = len(h.split())
            continue
        o = jiwer.process_words(r, h if h else "")
        errors[i] = o.substitutions + o.deletions + o.insertions
    return errors, words


def wer_ci(refs: list[str], hyps: list[str], seed: int = 0) -> dict:
    """Corpus WER over the utterances, normalised, with its 95 % interval and the count."""
    from .. import stats
    e, w = utterance_errors(refs, hyps)
    return {**stats.wer_ci(e, w, seed=seed), "errors": e.tolist(), "words": w.tolist()}


def real_time_factor(rec, audios: list[np.ndarray], frame_ms: int = 30, warmup_s: float = 1.0) -> dict:
    """Compute seconds per second of audio of one stream at a time fed ``frame_ms`` frames through ``rec``
    (front end, encoder, search), after a warm-up on the first ``warmup_s`` of the first recording. The
    audio is already in memory: reading files is not timed."""
    if not audios:
        raise ValueError("no audio to time")
    from .streaming import transcribe_streaming
    transcribe_streaming(rec, audios[0][:int(warmup_s * MODEL_SAMPLE_RATE)], frame_ms, "warmup")
    total = sum(len(a) for a in audios) / MODEL_SAMPLE_RATE
    t0 = time.perf_counter()
    for i, a in enumerate(audios):
        transcribe_streaming(rec, a, frame_ms, str(i))
    dt = time.perf_counter() - t0
    return {"rtf": dt / total, "compute_s": dt, "audio_s": total, "n_utterances": len(audios), "frame_ms": frame_ms}
