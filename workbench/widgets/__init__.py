"""Jupyter widgets: the browser microphone streamed into the kernel (mic.py), end-point threshold tuning
(endpoint_tuner.py)."""
from .endpoint_tuner import EndpointTuner  # noqa: F401
from .mic import MicCapture  # noqa: F401
