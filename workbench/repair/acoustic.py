"""Cut detection through the recogniser: the transcript and how it was said.

The parser reads only the transcript, and a transcript that misheard its last words reads as whole when it was
cut, or as cut when it was whole. How the words were said carries the other half: a speaker cut off mid-request
stops without the lengthened, falling end of a finished sentence, and the two-pass end-pointer's arbitrator
(trained with the ends of truncated prefixes as negatives) already reads that from the encoder output. The fused
detector is a logistic regression (scikit-learn) over the parser's P(cut) of the transcript and the arbitrator's
P(end) a moment after the last speech the VAD heard; the moment, the weights and the threshold are fitted on dev.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DELAYS_S = (0.2, 0.4, 0.6, 1.0)     # after the VAD's last speech: about when an end-pointer would have fired
VAD_SPEECH = 0.5


def speech_end(s) -> float:
    """Seconds: the end of the last VAD window with speech (0 when none), what a live system knows."""
    sp = np.flatnonzero(s.vad_prob > VAD_SPEECH)
    return float((sp[-1] + 1) * s.vad_hop) if len(sp) else 0.0


def p_end_after_speech(signals: list, probs, delay_s: float) -> np.ndarray:
    """The arbitrator's P(end of speech) at its first step ``delay_s`` after each utterance's last VAD speech
    (the last step if the recording ends sooner; 0.5 where the recogniser ran no step)."""
    out = []
    for s in signals:
        p = probs(s)
        if not len(p):
            out.append(0.5)
            continue
        j = int(np.searchsorted(s.step_time, speech_end(s) + delay_s))
        out.append(float(p[min(j, len(p) - 1)]))
    return np.array(out)


def _logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _f1(pred, truth) -> float:
    return float(2 * np.sum(pred & truth) / max(1, pred.sum() + truth.sum()))


@dataclass
class FusedCutDetector:
    """P(cut) = σ(w·[logit P(cut | transcript), logit P(end | audio)] + b), cut when over ``threshold``."""
    delay_s: float
    coef: tuple
    intercept: float
    threshold: float
    dev_f1: float = float("nan")
    dev_f1_parser_alone: float = float("nan")   # set by whoever compares (the bench)
    chosen: bool = False                        # ... and picks it over the parser alone on dev

    def proba(self, p_cut, p_end) -> np.ndarray:
        x = np.stack([_logit(p_cut), _logit(p_end)], 1)
        return 1 / (1 + np.exp(-(x @ np.asarray(self.coef) + self.intercept)))

    def detect(self, p_cut, p_end) -> np.ndarray:
        return self.proba(p_cut, p_end) > self.threshold

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def fit(cls, p_cut, signals: list, probs, truth, delays=DELAYS_S) -> "FusedCutDetector":
        """Weights by logistic regression on these (dev) utterances; the delay and the threshold with the best F1."""
        from sklearn.linear_model import LogisticRegression
        y = np.asarray(truth, bool)
        if y.all() or not y.any():
            raise ValueError("fitting the cut detector needs cut and whole utterances both")
        best = None
        for d in delays:
            p_end = p_end_after_speech(signals, probs, d)
            lr = LogisticRegression().fit(np.stack([_logit(p_cut), _logit(p_end)], 1), y)
            det = cls(d, tuple(float(c) for c in lr.coef_[0]), float(lr.intercept_[0]), 0.5)
            prob = det.proba(p_cut, p_end)
            for t in np.linspace(0.05, 0.95, 19):
                f1 = _f1(prob > t, y)
                if best is None or f1 > best.dev_f1 + 1e-12:
                    best = cls(d, det.coef, det.intercept, round(float(t), 2), f1)
        return best
