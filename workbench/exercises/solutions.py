"""Reference solutions of the notebooks' exercises. The committed notebooks call them in their solution cells,
so every smoke run passes them through the checks; the workshop's student copy replaces those cells with
``STUBS`` and its teacher copy shows these functions' source."""
from __future__ import annotations

from dataclasses import replace

import numpy as np


def longest_pause(ds) -> dict:
    """00: the utterance with the longest mid-sentence pause, and that pause's length."""
    longest = [max((p["end"] - p["start"] for p in e["pauses"]), default=0.0) for e in ds.entries]
    i = int(np.argmax(longest))
    return {"index": i, "pause_s": float(longest[i])}


def patient_batcher():
    """01: a FrameBatcher that waits up to twice max_wait while fewer than half the target batch is ready."""
    from ..batching import FrameBatcher

    class PatientBatcher(FrameBatcher):
        def next_due(self):
            due = super().next_due()
            if due is None or due == float("-inf"):
                return due
            ready = sum(1 for s in self.streams.values() if s.ready)
            return due + (self.policy.max_wait_ms / 1000 if ready < self.policy.target_batch / 2 else 0.0)
    return PatientBatcher


def token_policy():
    """03: wait only when a chunk holds a token and that token is unsure (blank-only chunks are easy)."""
    from ..asr.lookahead import CascadePolicy

    class MyPolicy(CascadePolicy):
        def commit(self, context, logp):
            p = logp.exp()
            blank = p.shape[-1] - 1                            # CTC's blank is its last class
            if not (p.argmax(-1) != blank).any():
                return True, 0.0
            u = float(1 - p[:, :blank].max())
            return u <= self.threshold, u
    return MyPolicy


def pause_or_eou():
    """04: a first pass that proposes when the pause *or* the recogniser's end-of-utterance fires."""
    from ..endpoint import EouEndpointer, PauseEndpointer
    from ..endpoint.endpointers import Endpointer

    class PauseOrEou(Endpointer):
        def __init__(self, pause_ms, theta):
            self.p, self.e, self.name = PauseEndpointer(pause_ms), EouEndpointer(theta), f"pause {pause_ms} | EOU {theta}"

        def proposals(self, s):
            t, h = self.p.proposals(s)                       # the VAD's windows: is the pause long enough?
            eou = self.e.endpoint(s)                         # when P(<EOU>) first reached theta
            return t, (h | (t >= eou)) if eou is not None else h

        def endpoint(self, s):
            t, h = self.proposals(s)
            return float(t[np.argmax(h)]) if h.any() else None
    return PauseOrEou


def pause_within_budget(tuner, target_ep90_ms: float) -> float:
    """05: on dev, the pause setting with the fewest cut-offs whose EP90 stays within the budget; None when no
    setting keeps EP90 within it on these utterances (then that is the answer)."""
    ok = [r for r in tuner.curves["pause"] if np.isfinite(r["EP90_ms"]) and r["EP90_ms"] <= target_ep90_ms]
    if not ok:
        return None
    return float(min(ok, key=lambda r: (r["cutoff_rate"], r["EP90_ms"]))["setting"])


def block_sizes(audio, block_ms: int = 100) -> list:
    """06: a second consumer on a fresh MicCapture, counting the samples of every block of a replay."""
    from ..widgets import MicCapture
    mic, sizes = MicCapture(block_ms=block_ms), []
    mic.on_chunk(lambda x: sizes.append(len(x)))
    mic.feed(audio)
    return sizes


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
    "longest_pause": 'longest = {"index": ..., "pause_s": ...}   # e["pauses"]: [{"start": ..., "end": ...}, ...]',
    "patient_batcher": ("from workbench.batching import FrameBatcher\n\nclass PatientBatcher(FrameBatcher):\n"
                        "    def next_due(self):\n        ...   # when is work due? super().next_due() is the plain rule"),
    "token_policy": ("class MyPolicy(CascadePolicy):\n    def commit(self, context, logp):\n"
                     "        ...   # return (commit_now, score); logp: CTC log-probs (frames, vocab), blank last"),
    "pause_or_eou": ("from workbench.endpoint import Endpointer\n\nclass PauseOrEou(Endpointer):\n"
                     "    def __init__(self, pause_ms, theta):\n        ...\n    def proposals(self, s):\n"
                     "        ...   # (times, holds): the pause's windows, holding when the pause or EOU fires\n"
                     "    def endpoint(self, s):\n        ..."),
    "pause_within_budget": "my_pause_ms = ...   # read tuner.curves['pause']: setting, EP90_ms, cutoff_rate",
    "block_sizes": "sizes = []   # a fresh MicCapture, on_chunk(...) appending len(samples), then feed(audio)",
    "frame_size_finals": "finals = {10: ..., 500: ...}   # the last event of transcribe_streaming(rec, audio, frame_ms=...)",
    "InVocabulary": ("class InVocabulary:\n    def __init__(self, base, vocab, gamma):\n        ...\n"
                     "    def __call__(self, final):\n        ...   # return the Final with its n-best reordered"),
    "alarm_defaults": "from workbench.repair import DEFAULTS\nmy_defaults = ...   # DEFAULTS plus your rule for ('set-alarm', ':date')",
    "mean_rule": "def mean_rule(logits, present=(True, True, True)):\n    ...   # one score per row of logits",
    "pitch_shift": "def pitch_shift(codes, factor):\n    ...   # codes -> parameters -> F0 x factor -> waveform",
    "sleepy_style": "from workbench.tts.styles import Style\nsleepy = Style(rate=..., pitch=..., range=..., volume=...)   # percent of neutral",
    "neutral_rule": "against = dict(D.AGAINST)   # and a rule for 'neutral'",
}
