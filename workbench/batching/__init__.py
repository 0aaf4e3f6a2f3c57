"""Frame batching: many live streams into batched cache-aware steps, a flush on every pause (engine.py);
the load generator and benchmark behind ``python -m workbench bench batching`` (bench.py)."""
from .engine import (BatcherFailed, BatchPolicy, FrameBatcher, FrameError, LiveBatcher, PauseDetector,  # noqa: F401
                     ScriptedPause,
                     SileroPause, Step, UnknownStreamError, silero_probs)
