"""What can be fetched from here: by-name loading of hub models and public corpora asks first, so that offline a
name fails within seconds with a typed error instead of hanging on a download. A base module (no room)."""
from __future__ import annotations

import os


class ModelNotAvailableError(RuntimeError):
    """A pretrained model name that cannot be fetched from here (offline), or a missing checkpoint."""


def reachable(url: str, timeout: float = 5.0) -> bool:
    """Can this machine fetch ``url``? A HEAD request with a hard timeout, so offline is a fast "no"."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as r:
            return r.status < 400
    except (urllib.error.URLError, OSError, ValueError):
        return False


def hub_reachable(timeout: float = 3.0, repo: str = "nvidia/parakeet-ctc-0.6b") -> bool:
    """Can a model be fetched from the Hugging Face hub now? No when HF_HUB_OFFLINE=1, else one HEAD request
    to the hub (``HF_ENDPOINT``, as huggingface_hub reads it) with a hard timeout, so offline is a fast no.
    Every by-name loader (NeMo, ESPnet, Whisper, the LMs) asks this."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    return os.environ.get("HF_HUB_OFFLINE") != "1" and reachable(f"{endpoint}/api/models/{repo}", timeout=timeout)
