"""The few typed events that flow one way through the streaming rooms.

audio frames -> recogniser steps -> Partial / EndOfUtterance events -> end-pointer decisions -> Final.
The batcher, the end-pointers, the widgets and the benchmarks all speak these, so no room invents
its own format. Times are seconds of stream audio (not wall clock) unless a field says otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class WordTiming:
    word: str
    start: float
    end: float


@dataclass
class Partial:
    """The running hypothesis after one recogniser step."""
    stream_id: str
    text: str
    tokens: list[int]
    audio_end: float                 # s of audio the step needed (its chunk + lookahead): when it could run live
    step: int
    encoder_frames: int              # encoder frames emitted so far
    encoder_output: np.ndarray | None = None   # (frames_this_step, d_model): for the two-pass arbitrator
    eou_prob: np.ndarray | None = None         # P(<EOU>) per encoder frame of this step (CTC head)


@dataclass
class EndOfUtterance:
    """The recogniser emitted its end-of-utterance token (first emission per utterance)."""
    stream_id: str
    time: float                      # end of the encoder frame that carried it
    probability: float               # the CTC head's P(<EOU>) at that point (max over the step's frames)
    step: int


@dataclass
class Hypothesis:
    text: str
    score: float
    tokens: list[int] = field(default_factory=list)
    words: list[WordTiming] = field(default_factory=list)


@dataclass
class Final:
    """The utterance's result once the stream is finalised."""
    stream_id: str
    nbest: list[Hypothesis]
    audio_end: float
    reason: str = "close"            # "close": the stream ended; "pause": a pause flush (the stream goes on)

    @property
    def text(self) -> str:
        return self.nbest[0].text if self.nbest else ""
