"""Streaming ASR: the training recipe (NeMo cache-aware FastConformer with <EOU>) and, next, one
streaming interface over the NeMo and ESPnet backends."""


def __getattr__(name):
    """``asr.load_shipped()`` and ``asr.transcribe_recordings()`` without importing NeMo on ``import workbench.asr``."""
    if name in ("load_shipped", "transcribe_recordings"):
        from . import shipped
        return getattr(shipped, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
