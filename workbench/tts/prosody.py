"""What a rendering did with a stage direction, measured in the audio: pitch level and range, speaking rate,
energy and voicing, each as a change against the same text rendered without tags.

The requested values (styles.Style) are percentages of the voice's neutral; ``requested`` puts them on the scale
of the measurement (semitones, dB, a ratio), and ``realisation`` gives, per attribute, the Spearman correlation
between what was asked and what was measured over every (text, tag) pair, with a paired-bootstrap interval: the
issue's "every prosodic tag realised" is Spearman >= 0.6 on each attribute.
F0 is pyworld's DIO + StoneMask (the same analysis the codec's WORLD parameters use).
"""
from __future__ import annotations

import numpy as np

from ..audio import MODEL_SAMPLE_RATE
from .styles import Style

ATTRIBUTES = ("rate", "pitch", "range", "volume", "whisper")
FRAME_S = 0.010
ACTIVE_DB = 35.0        # frames within this many dB of the loudest count as speech


def measure(audio: np.ndarray, sr: int = MODEL_SAMPLE_RATE, n_words: int | None = None) -> dict:
    """Prosody of one rendering: median F0 (semitones re 100 Hz), F0 range (5th-95th percentile, semitones),
    energy (dB re full scale over speech frames), speech time (s, pauses excluded), words per second of speech
    time (given ``n_words``) and the voiced share of speech frames."""
    import pyworld
    x = np.ascontiguousarray(audio, dtype=np.float64)
    if x.ndim != 1 or len(x) < int(0.05 * sr):
        raise ValueError(f"measure needs mono audio of at least 50 ms, got shape {x.shape}")
    hop = int(FRAME_S * sr)
    n = len(x) // hop
    power = (x[: n * hop].reshape(n, hop) ** 2).mean(1) + 1e-12
    db = 10 * np.log10(power)
    active = db > db.max() - ACTIVE_DB
    f0, t = pyworld.dio(x, sr, f0_floor=60.0, f0_ceil=500.0, frame_period=FRAME_S * 1000)
    f0 = pyworld.stonemask(x, f0, t, sr)[:n]
    voiced = (f0 > 0) & active[: len(f0)]
    st = 12 * np.log2(f0[voiced] / 100.0) if voiced.any() else np.array([np.nan])
    speech_s = float(active.sum() * FRAME_S)
    return {"f0_st": float(np.median(st)), "range_st": float(np.percentile(st, 95) - np.percentile(st, 5)),
            "energy_db": float(10 * np.log10(power[active].mean())), "speech_s": speech_s,
            "rate_wps": float(n_words / speech_s) if n_words and speech_s > 0 else float("nan"),
            "voiced_share": float(voiced.sum() / max(1, active.sum()))}


def requested(style: Style) -> dict:
    """A style's request on each attribute's measurement scale (neutral is 0)."""
    return {"rate": float(np.log2(style.rate / 100)), "pitch": float(12 * np.log2(style.pitch / 100)),
            "range": float(np.log2(style.range / 100)), "volume": float(20 * np.log10(style.volume / 100)),
            "whisper": float(style.whisper)}


def realised(tagged: dict, neutral: dict) -> dict:
    """The measured change of a tagged rendering against the untagged one, attribute by attribute, on the scales
    of ``requested``: log2 speed ratio, semitones, log2 range ratio, dB, loss of voicing."""
    return {"rate": float(np.log2(neutral["speech_s"] / tagged["speech_s"])),
            "pitch": tagged["f0_st"] - neutral["f0_st"],
            "range": float(np.log2(max(tagged["range_st"], 0.1) / max(neutral["range_st"], 0.1))),
            "volume": tagged["energy_db"] - neutral["energy_db"],
            "whisper": neutral["voiced_share"] - tagged["voiced_share"]}


def realisation(rows: list[dict], seed: int = 0) -> dict:
    """Per attribute, over rows ``{"requested": {...}, "realised": {...}}``: Spearman's rho between requested and
    realised with a paired-bootstrap 95 % interval (for an on/off attribute, whisper: the ROC AUC of the realised
    change separating on from off), and the mean realised change per requested level."""
    from scipy.stats import spearmanr
    from ..stats import paired_ci
    out = {}
    for a in ATTRIBUTES:
        req = np.array([r["requested"][a] for r in rows], float)
        got = np.array([r["realised"][a] for r in rows], float)
        ok = np.isfinite(req) & np.isfinite(got)
        req, got = req[ok], got[ok]
        if len(req) < 3 or np.ptp(req) == 0:
            continue
        levels = {f"{v:+.2f}": round(float(got[req == v].mean()), 3) for v in np.unique(req)}
        if len(np.unique(req)) == 2:    # on or off (whisper): rank ties make rho meaningless; ROC AUC instead
            from sklearn.metrics import roc_auc_score
            auc = (lambda x, y: float(roc_auc_score(x > x.min(), y)) if np.ptp(x) else 0.5)
            out[a] = {"auc": paired_ci((req, got), auc, seed=seed), "mean_by_request": levels}
            continue
        rho = (lambda x, y: float(spearmanr(x, y).statistic) if np.ptp(x) and np.ptp(y) else 0.0)
        out[a] = {"spearman": paired_ci((req, got), rho, seed=seed), "mean_by_request": levels}
    return out
