"""Log-mel features with a fixed (corpus-wide) mean and variance per mel bin: NeMo's preprocessor plus a
global MVN, as ESPnet's ``global_mvn``.

Why: NeMo's streaming recipes leave the log-mel unnormalised (``normalize: NA``: per-utterance statistics
need the future). On our espeak-ng corpus that leaves most time-frequency bins on the log floor (-16.6)
with speech a few units above it, and the zero padding of the causal convolutions reads as a loud
constant; the small encoder sat on CTC's blank plateau for thousands of steps, emitting a few frequent
words at the first frames whatever the audio. Fixed statistics are as streaming-safe as none (each frame
is normalised alone), and padding becomes the average frame. (NeMo's own ``fixed_mean``/``fixed_std``
option only works for batch size 1.)
"""
from __future__ import annotations

import torch
from nemo.collections.asr.modules import AudioToMelSpectrogramPreprocessor
from nemo.core.classes import common as _nemo_common

# NeMo 3 instantiates config ``_target_``s only from an allow-list of namespaces; this class is ours, so
# importing this module (workbench.asr.streaming.load_model and the recipe do) adds exactly this target.
_TARGET = f"{__name__}.GlobalMVNMelSpectrogram"
if _TARGET not in _nemo_common.ALLOWED_TARGET_PREFIXES:
    _nemo_common.ALLOWED_TARGET_PREFIXES.append(_TARGET)


class GlobalMVNMelSpectrogram(AudioToMelSpectrogramPreprocessor):
    """``AudioToMelSpectrogramPreprocessor`` (with ``normalize: NA``) followed by (x - mean) / std per bin;
    frames beyond each length stay 0."""

    def __init__(self, mvn_mean: list[float] | None = None, mvn_std: list[float] | None = None, **kwargs):
        kwargs["normalize"] = "NA"
        super().__init__(**kwargs)
        n = int(kwargs.get("features", 64))
        mean = torch.tensor(mvn_mean if mvn_mean is not None else [0.0] * n, dtype=torch.float32)
        std = torch.tensor(mvn_std if mvn_std is not None else [1.0] * n, dtype=torch.float32)
        if mean.shape != (n,) or std.shape != (n,) or not bool((std > 0).all()):
            raise ValueError(f"mvn_mean/mvn_std must be {n} values with std > 0 (features={n})")
        self.register_buffer("mvn_mean", mean.view(1, n, 1), persistent=False)
        self.register_buffer("mvn_std", std.view(1, n, 1), persistent=False)

    def get_features(self, input_signal, length):
        x, n = super().get_features(input_signal, length)
        x = (x - self.mvn_mean.to(x.dtype)) / self.mvn_std.to(x.dtype)
        pad = torch.arange(x.shape[-1], device=x.device)[None, :] >= n[:, None]
        return x.masked_fill(pad[:, None, :], 0.0), n


def corpus_mvn(entries: list[dict], preprocessor_cfg: dict, n: int = 300, seed: int = 0) -> tuple[list, list]:
    """Mean and std per mel bin over ``n`` training utterances (speech and silence alike, as streamed)."""
    import numpy as np
    from ..audio import load_audio
    cfg = {k: v for k, v in preprocessor_cfg.items() if k not in ("_target_", "mvn_mean", "mvn_std")}
    cfg.update(normalize="NA", dither=0.0)
    pre = AudioToMelSpectrogramPreprocessor(**cfg).eval()
    rng = np.random.default_rng(seed)
    s = s2 = None
    count = 0
    for i in rng.choice(len(entries), size=min(n, len(entries)), replace=False):
        x = torch.from_numpy(load_audio(entries[int(i)]["audio_filepath"]))[None]
        with torch.no_grad():
            f, _ = pre(input_signal=x, length=torch.tensor([x.shape[1]]))
        f = f[0].double()
        s = f.sum(1) if s is None else s + f.sum(1)
        s2 = (f * f).sum(1) if s2 is None else s2 + (f * f).sum(1)
        count += f.shape[1]
    mean = s / count
    std = (s2 / count - mean * mean).clamp_min(1e-6).sqrt()
    return [round(float(v), 5) for v in mean], [round(float(v), 5) for v in std]
