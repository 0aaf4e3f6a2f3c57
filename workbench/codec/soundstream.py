"""The waveform codec the field would reach for first: ESPnet's SoundStream generator, trained here as a peer.

Same data (the clean train utterances), same frame rate (25 Hz: ratios 8-5-4-4 at 16 kHz), same bitrate
(8 codebooks x 256 bins = 1.6 kbps), same losses short of adversarial ones (ESPnet's multi-scale mel loss,
the quantiser's commitment and quantisation losses), same CPU budget as ``train-codec``. It is what the
vocoder-parameter codec is measured against (``bench codec``): a GAN-trained SoundStream needs GPU-days.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .model import CodecError

MODEL_DIR = Path(__file__).resolve().parents[2] / "data" / "models" / "codec_soundstream"
SAMPLE_RATE = 16000


@dataclass
class SoundStreamConfig:
    ratios: tuple[int, ...] = (8, 5, 4, 4)
    n_filters: int = 16
    hidden_dim: int = 64
    n_q: int = 8
    bins: int = 256
    lstm: int = 1

    def generator_params(self) -> dict:
        # ESPnet replaces its defaults whole when generator_params are given: every field the model needs is here
        frame_rate = SAMPLE_RATE / np.prod(self.ratios)
        bw = self.n_q * np.log2(self.bins) * frame_rate / 1000
        return dict(sample_rate=SAMPLE_RATE, hidden_dim=self.hidden_dim, encdec_n_filters=self.n_filters,
                    encdec_ratios=list(self.ratios), encdec_causal=True, encdec_pad_mode="constant",
                    encdec_lstm=self.lstm, quantizer_n_q=self.n_q, quantizer_bins=self.bins,
                    quantizer_kmeans_iters=20, quantizer_threshold_ema_dead_code=1,
                    quantizer_target_bandwidth=[float(bw)])

    @property
    def frame_rate(self) -> float:
        return SAMPLE_RATE / float(np.prod(self.ratios))

    @property
    def bitrate(self) -> float:
        return self.n_q * float(np.log2(self.bins)) * self.frame_rate


class SoundStreamCodec:
    """encode/decode over ESPnet's ``SoundStreamGenerator`` (the codec protocol ``bench codec`` uses)."""

    def __init__(self, cfg: SoundStreamConfig, generator=None):
        from espnet2.gan_codec.soundstream.soundstream import SoundStreamGenerator
        self.cfg = cfg
        self.generator = generator or SoundStreamGenerator(**cfg.generator_params())
        self.frame_rate, self.bitrate = cfg.frame_rate, cfg.bitrate

    @torch.inference_mode()
    def encode(self, audio: np.ndarray) -> np.ndarray:
        a = np.asarray(audio, np.float32)
        if a.ndim != 1 or len(a) == 0:
            raise CodecError(f"the codec needs mono audio, got shape {a.shape}")
        hop = int(np.prod(self.cfg.ratios))
        a = np.pad(a, (0, (-len(a)) % hop))
        return self.generator.encode(torch.from_numpy(a)[None, None])[:, 0].numpy()

    @torch.inference_mode()
    def decode(self, codes: np.ndarray) -> np.ndarray:
        c = torch.from_numpy(np.asarray(codes, np.int64))[:, None]
        return self.generator.decode(c)[0, 0].numpy().clip(-1, 1)

    def resynthesise(self, audio: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(audio))[: len(audio)]

    def save(self, folder, extra: dict | None = None) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.generator.state_dict(), folder / "generator.pt")
        (folder / "soundstream.json").write_text(json.dumps({"config": asdict(self.cfg), "frame_rate_hz": self.frame_rate,
                                                            "bitrate_bps": self.bitrate, **(extra or {})}, indent=1))
        return folder

    @classmethod
    def load(cls, folder=None) -> "SoundStreamCodec":
        from ..hub import ModelNotAvailableError
        folder = Path(folder or MODEL_DIR)
        if not (folder / "soundstream.json").is_file():
            raise ModelNotAvailableError(f"no SoundStream peer in {folder}; run python -m workbench train-codec "
                                         "--peer soundstream")
        meta = json.loads((folder / "soundstream.json").read_text())
        c = dict(meta["config"])
        c["ratios"] = tuple(c["ratios"])
        codec = cls(SoundStreamConfig(**c))
        codec.generator.load_state_dict(torch.load(folder / "generator.pt", map_location="cpu", weights_only=True))
        codec.generator.eval()
        return codec


class _Segments(torch.utils.data.IterableDataset):
    def __init__(self, audios: list[np.ndarray], seconds: float, batch: int, seed: int):
        self.audios = [a for a in audios if len(a) > seconds * SAMPLE_RATE]
        self.n, self.batch, self.seed = int(seconds * SAMPLE_RATE), batch, seed

    def __iter__(self):
        rng = np.random.default_rng(self.seed)
        while True:
            xs = []
            for i in rng.integers(0, len(self.audios), self.batch):
                a = self.audios[i]
                s = int(rng.integers(0, len(a) - self.n + 1))
                xs.append(a[s: s + self.n])
            yield torch.from_numpy(np.stack(xs))[:, None]


def train_soundstream(audios: list[np.ndarray], dev_audios: list[np.ndarray], out=None, cfg=None,
                      max_minutes: float = 25.0, max_steps: int = 100000, batch: int = 8, seconds: float = 1.0,
                      lr: float = 1e-3, threads: int = 1, seed: int = 0, log=print) -> dict:
    """Train the peer on the same clean audio as the codec (Lightning), save it to ``out``."""
    import lightning.pytorch as pl
    from espnet2.gan_codec.shared.loss.freq_loss import MultiScaleMelSpectrogramLoss
    from ..files import replace_dir
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    cfg = cfg or SoundStreamConfig()
    codec = SoundStreamCodec(cfg)
    mel = MultiScaleMelSpectrogramLoss(fs=SAMPLE_RATE, range_start=7, range_end=11, n_mels=64)

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.g = codec.generator

        def _loss(self, x):
            y, commit, quant, _ = self.g(x)
            n = min(y.shape[-1], x.shape[-1])
            m = mel(y[..., :n], x[..., :n])
            return m + commit + quant, m

        def training_step(self, x, _):
            loss, m = self._loss(x)
            self.log("train_mel", m, batch_size=x.shape[0])
            return loss

        def validation_step(self, x, _):
            loss, m = self._loss(x)
            self.log("val_mel", m, batch_size=x.shape[0])

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=lr, betas=(0.8, 0.99))

    t0 = time.time()
    n = int(seconds * SAMPLE_RATE)
    dev = [a[:n] for a in dev_audios if len(a) >= n]
    dev_batches = [torch.from_numpy(np.stack(dev[i:i + 16]))[:, None] for i in range(0, len(dev), 16)]
    trainer = pl.Trainer(max_steps=max_steps, max_time={"minutes": max_minutes}, accelerator="auto", devices=1,
                         logger=False, enable_checkpointing=False, val_check_interval=200,
                         check_val_every_n_epoch=None, num_sanity_val_steps=0, enable_progress_bar=False,
                         gradient_clip_val=1.0, limit_val_batches=len(dev_batches))
    module = Module()
    loader = torch.utils.data.DataLoader
    trainer.fit(module, train_dataloaders=loader(_Segments(audios, seconds, batch, seed), batch_size=None),
                val_dataloaders=loader(dev_batches, batch_size=None))
    codec.generator = module.g.cpu().eval()
    meta = {"steps": int(trainer.global_step), "train_seconds": round(time.time() - t0, 1),
            "val_mel": round(float(trainer.callback_metrics.get("val_mel", float("nan"))), 4),
            "params": sum(p.numel() for p in codec.generator.parameters()), "threads": threads,
            "batch": batch, "segment_s": seconds, "train_utterances": len(audios)}
    out = Path(out or MODEL_DIR)
    tmp = out.with_name(f".{out.name}.training-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        codec.save(tmp, extra={"training": meta})
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"SoundStream peer: {meta['steps']} steps in {meta['train_seconds']:.0f} s, dev mel loss {meta['val_mel']} -> {out}")
    return meta
