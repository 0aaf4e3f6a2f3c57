"""The learned speech encoding: WORLD parameters -> encoder -> split residual VQ -> decoder -> WORLD parameters.

Semantic first level as in SpeechTokenizer (and Mimi): the latent is quantised by a semantic codebook distilled
from a teacher (here our streaming ASR encoder, as Mimi distils WavLM), then its residual by a stack of acoustic
codebooks; the decoder reads their sum, so the semantic codebook alone decodes to speech too. The quantisers are
ESPnet's ``ResidualVectorQuantizer`` (the SoundStream/EnCodec one: EMA codebooks, k-means init), looking codes up
in a 16-dimensional projection as DAC does. The recipe first trains encoder and decoder without quantisers
(``quantise = False``), so the codebooks start from k-means of a latent that already means something; EMA
codebooks chasing an untrained encoder never caught up on a CPU budget. Frame rate 100 Hz / ``stride``; bitrate
``n_q * log2(bins) * frame rate``. All convolutions are causal, so the codec can run on a stream.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import world

MODEL_DIR = Path(__file__).resolve().parents[2] / "data" / "models" / "codec"


class CodecError(ValueError):
    """Bad input to the codec (empty or silent-length audio, codes out of range, wrong shapes)."""


@dataclass
class CodecConfig:
    channels: int = 128
    latent: int = 128
    codebook_dim: int = 16                   # codes are looked up in a low-dimensional projection (as DAC does)
    strides: tuple[int, ...] = (2, 2)        # 100 Hz WORLD frames -> 25 Hz codes
    n_semantic: int = 1
    n_acoustic: int = 7
    bins: int = 256
    teacher_dim: int = 0                      # the ASR encoder's width; 0: no semantic head
    teacher_stride: int = 2                   # code frames per teacher frame (ASR encoder: 80 ms)

    @property
    def frame_rate(self) -> float:
        return 1.0 / world.FRAME_S / math.prod(self.strides)

    @property
    def n_q(self) -> int:
        return self.n_semantic + self.n_acoustic

    @property
    def bitrate(self) -> float:
        return self.n_q * math.log2(self.bins) * self.frame_rate


class CausalConv(nn.Conv1d):
    def __init__(self, cin, cout, k, stride=1, dilation=1):
        super().__init__(cin, cout, k, stride=stride, dilation=dilation)
        self.pad = (k - 1) * dilation + 1 - stride

    def forward(self, x):
        return super().forward(nn.functional.pad(x, (self.pad, 0)))


class ResBlock(nn.Module):
    def __init__(self, c, dilation):
        super().__init__()
        self.net = nn.Sequential(nn.ELU(), CausalConv(c, c, 3, dilation=dilation), nn.ELU(), nn.Conv1d(c, c, 1))

    def forward(self, x):
        return x + self.net(x)


class SpeechCodec(nn.Module):
    def __init__(self, cfg: CodecConfig, dim: int | None = None):
        super().__init__()
        from espnet2.gan_codec.shared.quantizer.residual_vq import ResidualVectorQuantizer
        self.cfg = cfg
        self.dim = dim or world.frame_dim()
        c = cfg.channels
        enc = [CausalConv(self.dim, c, 5), ResBlock(c, 1), ResBlock(c, 3)]
        for s in cfg.strides:
            enc += [nn.ELU(), CausalConv(c, c, 2 * s, stride=s), ResBlock(c, 1), ResBlock(c, 3)]
        enc += [nn.ELU(), CausalConv(c, cfg.latent, 3), nn.Tanh()]   # bounded: k-means and EMA can follow it
        self.encoder = nn.Sequential(*enc)
        dec = [CausalConv(cfg.latent, c, 5), ResBlock(c, 1), ResBlock(c, 3)]
        for s in cfg.strides:
            dec += [nn.ELU(), nn.Upsample(scale_factor=s, mode="nearest"), CausalConv(c, c, 2 * s),
                    ResBlock(c, 1), ResBlock(c, 3)]
        dec += [nn.ELU(), CausalConv(c, self.dim, 5)]
        self.decoder = nn.Sequential(*dec)
        vq = dict(dimension=cfg.latent, codebook_dim=cfg.codebook_dim, bins=cfg.bins, kmeans_init=True, kmeans_iters=20,
                  threshold_ema_dead_code=0, decay=0.99)
        self.semantic = ResidualVectorQuantizer(n_q=cfg.n_semantic, **vq)
        self.acoustic = ResidualVectorQuantizer(n_q=cfg.n_acoustic, **vq)
        self.teacher_head = nn.Linear(cfg.latent, cfg.teacher_dim) if cfg.teacher_dim else None
        self.quantise = True
        self.register_buffer("mu", torch.zeros(self.dim))
        self.register_buffer("sd", torch.ones(self.dim))

    # -- tensors ------------------------------------------------------------------------------------------
    def normalise(self, params: torch.Tensor) -> torch.Tensor:       # (B, T, dim) -> (B, dim, T)
        return ((params - self.mu) / self.sd).transpose(1, 2)

    def denormalise(self, z: torch.Tensor) -> torch.Tensor:          # (B, dim, T) -> (B, T, dim)
        return z.transpose(1, 2) * self.sd + self.mu

    def forward(self, params: torch.Tensor):
        """Training pass over (B, T, dim) WORLD parameters (T a multiple of the total stride): the
        reconstruction (normalised, (B, dim, T)), the commitment loss and the semantic latent."""
        x = self.encoder(self.normalise(params))
        if not self.quantise:                      # the recipe's warm-up: no bottleneck but the frame rate
            return self.decoder(x), torch.zeros((), device=x.device), x
        fr = self.cfg.frame_rate
        qs, _, _, c1 = self.semantic(x, fr)
        qa, _, _, c2 = self.acoustic(x - qs.detach(), fr)
        return self.decoder(qs + qa), c1 + c2, qs

    def teacher_prediction(self, qs: torch.Tensor) -> torch.Tensor:
        """The semantic codebook's guess of the ASR encoder's output, (B, T_teacher, teacher_dim)."""
        k = self.cfg.teacher_stride
        pooled = nn.functional.avg_pool1d(qs, k, k) if k > 1 else qs
        return self.teacher_head(pooled.transpose(1, 2))

    @torch.inference_mode()
    def codes_from_params(self, params: torch.Tensor) -> torch.Tensor:
        """(B, T, dim) -> codes (B, n_q, T / stride), semantic codebook first."""
        x = self.encoder(self.normalise(params))
        fr = self.cfg.frame_rate
        cs = self.semantic.encode(x, fr)
        ca = self.acoustic.encode(x - self.semantic.decode(cs), fr)
        return torch.cat([cs, ca], 0).transpose(0, 1)

    @torch.inference_mode()
    def params_from_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, n_q', T) -> (B, T * stride, dim) WORLD parameters; n_q' < n_q decodes from the first
        codebooks only (the semantic one alone when n_q' = 1)."""
        n_s = self.cfg.n_semantic
        codes = codes.transpose(0, 1)
        q = self.semantic.decode(codes[:n_s])
        if codes.shape[0] > n_s:
            q = q + self.acoustic.decode(codes[n_s:])
        return self.denormalise(self.decoder(q))

    # -- audio ----------------------------------------------------------------------------------------------
    def _stride(self) -> int:
        return math.prod(self.cfg.strides)

    def encode(self, audio: np.ndarray, sr: int = world.SAMPLE_RATE) -> np.ndarray:
        """16 kHz mono audio -> int codes (n_q, frames at ``cfg.frame_rate``)."""
        a = np.asarray(audio, dtype=np.float32)
        if sr != world.SAMPLE_RATE:
            raise CodecError(f"the codec takes {world.SAMPLE_RATE} Hz audio, got {sr} Hz (resample first)")
        if a.ndim != 1 or len(a) < int(0.05 * sr):
            raise CodecError(f"the codec needs mono audio of at least 50 ms, got shape {a.shape}")
        if not np.isfinite(a).all():
            raise CodecError("audio contains NaN or infinite samples")
        p = world.analyse(a, sr)
        k = self._stride()
        pad = (-len(p)) % k
        if pad:
            p = np.concatenate([p, np.repeat(p[-1:], pad, 0)])
        return self.codes_from_params(torch.from_numpy(p)[None])[0].numpy()

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """int codes (n_q' <= n_q, frames) -> 16 kHz float32 audio."""
        c = np.asarray(codes)
        if c.ndim != 2 or c.shape[1] == 0 or not 1 <= c.shape[0] <= self.cfg.n_q:
            raise CodecError(f"codes must be (n_q <= {self.cfg.n_q}, frames > 0), got shape {c.shape}")
        if not np.issubdtype(c.dtype, np.integer) or c.min() < 0 or c.max() >= self.cfg.bins:
            raise CodecError(f"codes must be integers in [0, {self.cfg.bins})")
        p = self.params_from_codes(torch.from_numpy(c.astype(np.int64))[None])[0].numpy()
        return world.synthesise(p)

    def resynthesise(self, audio: np.ndarray, n_q: int | None = None) -> np.ndarray:
        codes = self.encode(audio)
        return self.decode(codes[: n_q or self.cfg.n_q])[: len(audio)]

    # -- files ----------------------------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike, extra: dict | None = None) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), folder / "codec.pt")
        meta = {"config": asdict(self.cfg), "dim": self.dim, "frame_rate_hz": self.cfg.frame_rate,
                "bitrate_bps": self.cfg.bitrate, **(extra or {})}
        (folder / "codec.json").write_text(json.dumps(meta, indent=1))
        return folder


def load_codec(folder: str | os.PathLike | None = None) -> SpeechCodec:
    """The codec saved by ``train-codec`` (default: the shipped ``data/models/codec``)."""
    from ..asr.streaming import ModelNotAvailableError
    folder = Path(folder or MODEL_DIR)
    if not (folder / "codec.json").is_file() or not (folder / "codec.pt").is_file():
        raise ModelNotAvailableError(f"no codec in {folder} (codec.json + codec.pt); run python -m workbench "
                                     "train-codec")
    meta = json.loads((folder / "codec.json").read_text())
    c = dict(meta["config"])
    c["strides"] = tuple(c["strides"])
    model = SpeechCodec(CodecConfig(**c), dim=meta["dim"])
    model.load_state_dict(torch.load(folder / "codec.pt", map_location="cpu", weights_only=True))
    return model.eval()
