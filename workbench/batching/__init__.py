"""Frame batching: many live streams into batched cache-aware steps, a flush on every pause (engine.py);
the load generator and benchmark behind ``python -m workbench bench batching`` (bench.py)."""
from .engine import (BatchPolicy, FrameBatcher, FrameError, LiveBatcher, PauseDetector, ScriptedPause,  # noqa: F401
                     SileroPause, Step, UnknownStreamError, silero_probs)
