"""Jupyter widgets: end-point threshold tuning (endpoint_tuner.py); live microphone capture follows."""
from .endpoint_tuner import EndpointTuner  # noqa: F401
