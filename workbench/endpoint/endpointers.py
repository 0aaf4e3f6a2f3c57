"""Three end-pointers behind one interface: ``endpoint(signals) -> time in s, or None``.

a. ``PauseEndpointer(pause_ms)``: silero-vad; fires when the silence after speech reaches ``pause_ms``.
b. ``EouEndpointer(theta)``: the recogniser's end-of-utterance token; fires at the first step whose CTC
   head gives P(<EOU>) >= theta on one of its frames (at the time that step could run: chunk + lookahead).
c. ``TwoPassEndpointer(first, arbitrator_threshold, max_wait_ms)`` (Raju et al., ASRU 2023): the first pass
   (a or b) *proposes*; the arbitrator's P(end of speech), computed from the recent encoder output and the
   partial transcript, *accepts* or *defers*; a deferred proposal is asked again at every later step while
   the first pass still holds, and accepted at the latest ``max_wait_ms`` after it was first made.

Each reads only what was available at the time it fires (no future audio beyond the recogniser's own
lookahead). Scoring a threshold over a cached split is a few vectorised operations per utterance, so
sweeps and the tuning widget are instant. ``StreamingEndpointer`` runs any of them live, frame by frame.
"""
from __future__ import annotations

import numpy as np

from .signals import Signals


class Endpointer:
    name = "endpointer"

    def endpoint(self, s: Signals) -> float | None:
        raise NotImplementedError

    def proposals(self, s: Signals) -> tuple[np.ndarray, np.ndarray]:
        """(times, holds): candidate times at which this end-pointer would fire, and whether its
        condition holds there; used as the first pass of a two-pass end-pointer."""
        raise NotImplementedError


def _silence_run(prob: np.ndarray, threshold: float) -> np.ndarray:
    """Per window: consecutive non-speech windows ending here, counted only after the first speech."""
    speech = prob >= threshold
    seen = np.cumsum(speech) > 0
    run = np.zeros(len(prob), dtype=int)
    c = 0
    for i, sp in enumerate(speech):         # ~100 windows per utterance
        c = 0 if sp else c + 1
        run[i] = c
    return np.where(seen & ~speech, run, 0)


class PauseEndpointer(Endpointer):
    """Silence (silero-vad probability < ``vad_threshold``) of at least ``pause_ms`` after speech."""

    def __init__(self, pause_ms: float = 500.0, vad_threshold: float = 0.5):
        if pause_ms <= 0:
            raise ValueError(f"pause_ms must be > 0, got {pause_ms}")
        self.pause_ms, self.vad_threshold = pause_ms, vad_threshold
        self.name = f"pause {pause_ms:.0f} ms"

    def _run(self, s: Signals) -> np.ndarray:
        cache = s.__dict__.setdefault("_silence_runs", {})     # per utterance: sweeps reuse it
        if self.vad_threshold not in cache:
            cache[self.vad_threshold] = _silence_run(s.vad_prob, self.vad_threshold)
        return cache[self.vad_threshold]

    def proposals(self, s):
        run = self._run(s)
        times = (np.arange(len(run)) + 1) * s.vad_hop
        return times, run * s.vad_hop >= self.pause_ms / 1000 - 1e-9

    def endpoint(self, s):
        times, holds = self.proposals(s)
        return float(times[np.argmax(holds)]) if holds.any() else None


class EouEndpointer(Endpointer):
    """The recogniser's P(<EOU>) (CTC head, per encoder frame) >= ``theta``."""

    def __init__(self, theta: float = 0.5):
        if not 0 < theta <= 1:
            raise ValueError(f"theta must be in (0, 1], got {theta}")
        self.theta = theta
        self.name = f"EOU {theta:g}"

    def proposals(self, s):
        if len(s.eou_prob) == 0:
            return np.zeros(0), np.zeros(0, bool)
        return s.frame_available(), s.eou_prob >= self.theta

    def endpoint(self, s):
        times, holds = self.proposals(s)
        return float(times[np.argmax(holds)]) if holds.any() else None


class TwoPassEndpointer(Endpointer):
    """First pass proposes, the arbitrator accepts (P >= ``threshold``) or defers; forced after
    ``max_wait_ms``. ``arbitrator_probs(s)`` gives the arbitrator's P(end) after each recogniser step."""

    def __init__(self, first: Endpointer, arbitrator_probs, threshold: float = 0.5, max_wait_ms: float = 1500.0):
        self.first, self.arb, self.threshold, self.max_wait_ms = first, arbitrator_probs, threshold, max_wait_ms
        self.name = f"two-pass ({first.name}, arb {threshold:g}, wait {max_wait_ms:.0f} ms)"

    def endpoint(self, s):
        times, holds = self.first.proposals(s)
        if not holds.any():
            return None
        p = self.arb(s)                     # per recogniser step
        steps = s.step_time
        # at each candidate time, the latest step that had run by then
        idx = np.searchsorted(steps, times + 1e-9, side="right") - 1
        p_at = np.where(idx >= 0, p[np.clip(idx, 0, len(p) - 1)] if len(p) else 0.0, 0.0)
        start = None
        for t, h, q in zip(times, holds, p_at):
            if not h:
                start = None                # speech resumed: the proposal is withdrawn
                continue
            if start is None:
                start = t
            if q >= self.threshold or (t - start) * 1000 >= self.max_wait_ms - 1e-9:
                return float(t)
        return None


def score(endpointer: Endpointer, signals: list[Signals]) -> list:
    """Outcomes of one end-pointer setting over a split (for ``metrics.summarize``)."""
    from .metrics import Outcome
    return [Outcome(s.true_end, endpointer.endpoint(s), s.audio_end, s.words) for s in signals]


def sweep(make, settings, signals: list[Signals]) -> list[dict]:
    """Trade-off curve: ``make(setting) -> Endpointer`` for each setting, scored and summarised."""
    from .metrics import tradeoff
    return tradeoff({st: score(make(st), signals) for st in settings})


class StreamingEndpointer:
    """Any end-pointer, live: push 30 ms frames (and the recogniser's events for them); returns the
    endpoint time once it fires. The signals grow as audio arrives; the decision at each push uses only
    what has arrived, so it equals the offline decision on the same audio (tested).

    The recogniser's events (P(<EOU>), encoder output, partial transcript: what the EOU and two-pass
    end-pointers read) come either from a ``recognizer`` run here, or, when the caller already runs one
    (the microphone widget), passed to ``push(frame, events)`` with ``frame_s`` its encoder frame."""

    def __init__(self, endpointer: Endpointer, recognizer=None, stream_id: str = "live", frame_s: float | None = None):
        self.ep, self.rec = endpointer, recognizer
        self.frame_s = frame_s if frame_s is not None else (recognizer.frame_s if recognizer is not None else 0.08)
        self.state = recognizer.new_stream(stream_id) if recognizer is not None else None
        self.events: list = []
        self.audio: list = []
        self.fired: float | None = None
        self._vad = None

    def push(self, frame: np.ndarray, events: list | None = None) -> float | None:
        from ..audio import load_silero_vad
        import torch
        from .signals import asr_signals
        if self.fired is not None:
            return self.fired
        if self._vad is None:
            self._vad, self._rest, self._probs = load_silero_vad(), np.zeros(0, np.float32), []
        x = np.concatenate([self._rest, np.asarray(frame, np.float32)])
        n = len(x) // 512 * 512
        with torch.inference_mode():
            for a in range(0, n, 512):
                self._probs.append(float(self._vad(torch.from_numpy(x[a:a + 512]), 16000)))
        self._rest = x[n:]
        self.audio.append(np.asarray(frame, np.float32))
        if self.rec is not None:
            self.events += self.rec.accept_audio(self.state, frame)
        if events:
            self.events += list(events)
        heard = sum(len(a) for a in self.audio) / 16000
        s = Signals("live", "", float("inf"), heard, vad_prob=np.array(self._probs, np.float32),
                    frame_s=self.frame_s, **asr_signals(self.events))
        t = self.ep.endpoint(s)
        if t is not None and t <= heard + 1e-9:
            self.fired = t
        return self.fired
