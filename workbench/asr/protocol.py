"""The public recogniser interface every room consumes (the batcher, the lookahead cascade, the
end-pointers, the widgets, the benches and the rooms that follow).

``Recognizer``: what every backend (NeMo, ESPnet, the peers of later rooms) implements: streams in,
typed events out (``workbench.events``). ``BatchRecognizer``: what a backend whose encoder steps several
streams in one batch adds, with the attention context passed per call (no call changes what another
caller of the same model decodes with). The NeMo ``StreamingRecognizer`` is both; the ESPnet backend is a
``Recognizer`` (espnet2's ``Speech2TextStreaming`` keeps one utterance's search state, swapped in per
stream under the model's lock, so its streams run one after another, not batched).

Threads: a loaded model may be shared by recognisers in several threads; a stream state belongs to one
caller at a time.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Recognizer(Protocol):
    frame_s: float                      # one encoder frame, seconds

    def new_stream(self, stream_id: str = "0"): ...

    def accept_audio(self, st, samples: np.ndarray, sample_rate: int = 16000) -> list: ...

    def finalize(self, st) -> list: ...


@runtime_checkable
class BatchRecognizer(Recognizer, Protocol):
    att_context: list                   # the default context of calls that pass none

    def release_features(self, states: list, final: bool = False) -> None: ...

    def pending_chunks(self, st, context=None) -> int: ...

    def next_chunk(self, st, final: bool, context=None, advance: bool = True): ...

    def encode(self, states: list, chunks: list, context=None): ...

    def step_batch(self, states: list, chunks: list, context=None, encoded=None) -> list: ...

    def run_chunks(self, st, final: bool) -> list: ...

    def result(self, st): ...
