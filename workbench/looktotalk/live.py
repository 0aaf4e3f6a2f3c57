"""The running look-to-talk score while the user speaks, in the notebook.

The microphone's live session already runs the streaming recogniser; the camera widget already sends its cues.
Every ``every_s`` of audio this scores the utterance so far exactly as the bench scores its prefixes
(``features.heard_so_far``: the encoder frames and tokens of the last recogniser step, prosody over the audio so
far), adds the camera's cues since the recording started, and fuses them, leaving out the visual cue when the
camera is off, refused or sees no face. The camera widget shows the score as it moves.
"""
from __future__ import annotations

import time

import numpy as np
from scipy.special import expit

from ..audio import MODEL_SAMPLE_RATE
from .features import Utterance, heard_so_far
from .visual import FPS, summarise


class LiveLookToTalk:
    """``LiveLookToTalk(mic, session, camera, models)``: ``session`` is ``mic.connect(recognizer, ...)``'s.

    ``scores``: (s of audio heard, P(meant for the device), cues used) per update; ``decision()``: the last
    score against the model's dev-chosen threshold for the cues it used."""

    def __init__(self, mic, session, camera=None, models=None, every_s: float = 0.5):
        from .models import DirectednessModels
        self.mic, self.session, self.camera = mic, session, camera
        self.models = models if models is not None else DirectednessModels.load()
        self.every_s = float(every_s)
        self.start()
        mic.on_chunk(self)

    def start(self):
        self.t_wall0 = time.time()
        self.scores: list[tuple[float, float, tuple]] = []
        self._next = self.every_s
        if self.camera is not None:
            self.camera.score = -1.0

    def __call__(self, x: np.ndarray):
        heard = self.mic.heard_s
        if heard + 1e-9 >= self._next:
            self._next += self.every_s
            self.update()

    def stop(self):
        self.update()

    def utterance(self) -> Utterance:
        """The utterance so far, as the classifiers read it."""
        from ..endpoint.signals import asr_signals, vad_windows
        audio = self.mic.audio()
        sig = asr_signals(self.session.events)
        vad, hop = vad_windows(audio)
        at = len(audio) / MODEL_SAMPLE_RATE
        pre = heard_so_far(at, sig["step_time"], sig["step_frames"], sig["tokens"], audio, vad, hop, self.session.rec)
        enc = sig["encoder"] if sig["encoder"] is not None else np.zeros((1, self.models.acoustic.inp.in_features), np.float16)
        u = Utterance("live", True, "live", "live", "", enc, [], pre[4], at, prefixes={"now": pre})
        return u.heard("now")

    def cues(self) -> tuple[np.ndarray, bool]:
        """The camera's cues since the recording started (from half a second before, as in training) and whether
        the visual cue counts: a camera that runs and has seen a face."""
        if self.camera is None or not self.camera.available:
            return np.zeros((0, 5), np.float32), False
        seq = self.camera.sequence(self.t_wall0 - 0.5)
        return seq, bool(len(seq) >= max(2, FPS / 4) and (seq[:, 0] > 0.5).any())

    def update(self) -> float:
        u = self.utterance()
        seq, seen = self.cues()
        present = (True, True, seen)
        vis = summarise(seq) if len(seq) else np.zeros(6, np.float32)
        p = float(expit(self.models.fuse(self.models.logits([u], vis[None]), present)[0]))
        self.scores.append((u.duration, p, present))
        if self.camera is not None:
            self.camera.threshold = self.models.threshold(present)
            self.camera.score = p
        return p

    def decision(self) -> bool:
        if not self.scores:
            raise RuntimeError("no score yet: nothing was heard")
        _, p, present = self.scores[-1]
        return p >= self.models.threshold(present)
