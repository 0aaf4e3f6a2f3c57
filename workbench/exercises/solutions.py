"""Reference solutions of the notebooks' exercises. The committed notebooks call them in their solution cells,
so every smoke run passes them through the checks; the workshop's student copy replaces those cells with
``STUBS`` and its teacher copy shows these functions' source."""
from __future__ import annotations

from dataclasses import replace

import numpy as np


def frame_size_finals(rec, audio, sizes=(10, 500)) -> dict:
    """02: the same utterance streamed with two frame sizes; the last event of each."""
    from ..asr.streaming import transcribe_streaming
    return {ms: transcribe_streaming(rec, audio, frame_ms=ms)[-1] for ms in sizes}


class InVocabulary:
    """07: a reranker ordering by ``base``'s total plus gamma x the number of in-vocabulary words."""

    def __init__(self, base, vocab, gamma):
        self.base, self.vocab, self.gamma = base, vocab, gamma

    def bonus(self, text):
        from ..asr.scoring import normalize
        return sum(w in self.vocab for w in normalize(text).split())

    def __call__(self, final):
        if len(final.nbest) < 2:
            return final
        rows = self.base.explain(final.nbest)
        total = [r["total"] + self.gamma * self.bonus(h.text) for r, h in zip(rows, final.nbest)]
        order = np.argsort(-np.array(total), kind="stable")
        return replace(final, nbest=[final.nbest[int(k)] for k in order])


def alarm_defaults() -> dict:
    """08: DEFAULTS plus an alarm cut before its day set for tomorrow."""
    from ..repair import DEFAULTS
    return dict(DEFAULTS) | {("set-alarm", ":date"): ("day", "tomorrow")}


def mean_rule(dev_logits):
    """09: the mean of the present cues' logits, each divided by its standard deviation on dev."""
    scale = np.asarray(dev_logits, float).std(0)

    def rule(logits, present=(True, True, True)):
        m = np.asarray(present, bool)
        return (np.asarray(logits, float)[:, m] / scale[m]).mean(1)
    return rule


def pitch_shift(codec):
    """10: decode codes to WORLD parameters, add log(factor) to log F0 (column -2), synthesise."""
    import torch

    from ..codec import world

    def shift(codes, factor):
        p = codec.params_from_codes(torch.from_numpy(np.asarray(codes, np.int64))[None])[0].numpy().copy()
        p[:, -2] += np.log(factor)
        return world.synthesise(p)
    return shift


def sleepy_style():
    """10: ``[sleepy]``: slower, a little lower, narrower and quieter than neutral (percent of neutral)."""
    from ..tts.styles import Style
    return Style(rate=75, pitch=92, range=60, volume=65)


def neutral_rule() -> dict:
    """11: stage 5's table with a rule for neutral users: an excited answer is against their mood."""
    from ..s2s import data as D
    return dict(D.AGAINST) | {"neutral": "excited"}


# what a student's solution cell holds instead (python -m workbench workshop)
STUBS = {
    "frame_size_finals": "finals = {10: ..., 500: ...}   # the last event of transcribe_streaming(rec, audio, frame_ms=...)",
    "InVocabulary": ("class InVocabulary:\n    def __init__(self, base, vocab, gamma):\n        ...\n"
                     "    def __call__(self, final):\n        ...   # return the Final with its n-best reordered"),
    "alarm_defaults": "from workbench.repair import DEFAULTS\nmy_defaults = ...   # DEFAULTS plus your rule for ('set-alarm', ':date')",
    "mean_rule": "def mean_rule(logits, present=(True, True, True)):\n    ...   # one score per row of logits",
    "pitch_shift": "def pitch_shift(codes, factor):\n    ...   # codes -> parameters -> F0 x factor -> waveform",
    "sleepy_style": "from workbench.tts.styles import Style\nsleepy = Style(rate=..., pitch=..., range=..., volume=...)   # percent of neutral",
    "neutral_rule": "against = dict(D.AGAINST)   # and a rule for 'neutral'",
}
