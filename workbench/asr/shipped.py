"""The shipped default recogniser (``data/models/asr_small``) as the other rooms read it: one loader, cached per
process, and whole recordings to text. The codec's, the TTS's and speech-to-speech's judges all go through here,
so every room measures the same model the same way.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..events import Final
from .recipe import MODELS
from .streaming import StreamingRecognizer, load_model, trained_contexts, transcribe_batch

SHIPPED = MODELS / "asr_small" / "model.nemo"


@lru_cache(maxsize=1)
def load_shipped():
    """The shipped streaming model (NeMo), loaded once per process on the CPU (``ModelNotAvailableError``
    naming the path when it is missing)."""
    return load_model(SHIPPED, device="cpu")


def transcribe_recordings(audios: list[np.ndarray], model=None, batch: int = 32) -> list[str]:
    """Whole 16 kHz recordings -> their final transcripts: ``model`` (the shipped one by default) streaming at
    its largest lookahead, greedy, ``batch`` streams at a time."""
    model = model or load_shipped()
    largest = max(trained_contexts(model), key=lambda c: c[1])
    rec = StreamingRecognizer(model, largest)
    out = []
    for i in range(0, len(audios), batch):
        for ev in transcribe_batch(rec, audios[i:i + batch]):
            fin = [e for e in ev if isinstance(e, Final)]
            out.append(fin[-1].text if fin else "")
    return out
