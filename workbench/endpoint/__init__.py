"""End-pointing: when has the user finished speaking? A pause baseline (silero-vad), the recogniser's
end-of-utterance token, and a two-pass end-pointer whose arbitrator confirms the first pass's proposal
from the encoder output and the partial transcript; the field's metrics (EP50/EP90, cut-off rate)."""
from .endpointers import (EouEndpointer, Endpointer, PauseEndpointer, StreamingEndpointer,  # noqa: F401
                          TwoPassEndpointer, score, sweep)
from .metrics import Outcome, compare_at_ep90, cutoff_at_ep90, summarize, tradeoff  # noqa: F401
from .signals import Signals, compute_signals  # noqa: F401
