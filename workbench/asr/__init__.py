"""Streaming ASR: the training recipe (NeMo cache-aware FastConformer with <EOU>) and, next, one
streaming interface over the NeMo and ESPnet backends."""
