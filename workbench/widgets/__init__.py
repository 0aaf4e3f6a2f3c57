"""Jupyter widgets: the browser microphone streamed into the kernel (mic.py), the browser camera's look-to-talk cue
computed in the page (camera.py, its vendored face mesh: assets.py), end-point threshold tuning (endpoint_tuner.py)."""
from .camera import CameraCue  # noqa: F401
from .endpoint_tuner import EndpointTuner  # noqa: F401
from .mic import MicCapture  # noqa: F401
