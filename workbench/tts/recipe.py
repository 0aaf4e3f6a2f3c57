"""``python -m workbench train-tts --system ltts|baseline``: both synthesisers on the expressive corpus, same data,
same budget, same optimiser (Lightning, any device).

Data: the expressive corpus's train split (corpus.py: the target voice's tagged responses, re-styled), dev for the
validation loss. The LTTS trains its LoRA adapters, the projection and the whole FastSpeech2; the LM's own
weights stay frozen. Training stops at ``max_steps`` or ``max_minutes``; the learning rate warms up, then decays on
a cosine over whichever budget runs out first. The saved synthesiser then has every delivery tag's realisation
measured on dev texts and stored with it (tandem.calibrate), for the tagger's selection.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .corpus import ExpressiveConfig, build
from .ltts import MODELS, Synthesiser, TTSConfig, new_synthesiser, vocabulary
from ..scale import finish_ranks, shard


@dataclass
class TrainTTSConfig:
    tts: TTSConfig = field(default_factory=TTSConfig)
    corpus: ExpressiveConfig = field(default_factory=ExpressiveConfig)
    n_train: int = 2400
    n_dev: int = 64
    batch_size: int = 16
    lr: float = 1e-3
    warmup_steps: int = 100
    max_steps: int = 20000
    max_minutes: float = 20.0
    val_every: int = 200
    threads: int = 2
    workers: int = 2
    seed: int = 0
    cache: bool = True          # rendered corpus kept under data/cache/tts
    calibrate_texts: int = 6    # dev texts for the tags' measured realisation (tandem.py), stored with the model


def default_dir(system: str) -> Path:
    return MODELS / ("tts_ltts" if system == "ltts" else "tts_baseline")


class Batches(torch.utils.data.IterableDataset):
    """Endless random batches of precomputed targets."""

    def __init__(self, targets: list[dict], batch: int, seed: int):
        self.targets, self.batch, self.seed = targets, batch, seed

    def __iter__(self):
        rng, targets = np.random.default_rng(self.seed), shard(self.targets)   # each DDP rank its own utterances
        while True:
            yield [targets[i] for i in rng.choice(len(targets), min(self.batch, len(targets)), replace=False)]


def _module(syn: Synthesiser, cfg: TrainTTSConfig):
    import lightning.pytorch as pl
    from ..lm.domain import warmup_cosine

    class TTSModule(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.syn = syn

        def training_step(self, batch, _):
            loss, stats = self.syn.loss(batch)
            for k, v in stats.items():
                self.log(f"train_{k}", float(v), prog_bar=k == "loss", batch_size=len(batch))
            return loss

        def validation_step(self, batch, _):
            loss, stats = self.syn.loss(batch)
            for k, v in stats.items():
                self.log(f"val_{k}", float(v), batch_size=len(batch))

        def on_train_start(self):
            self.t0 = time.time()

        def progress(self) -> float:
            t = (time.time() - self.t0) / (cfg.max_minutes * 60) if hasattr(self, "t0") else 0.0
            return min(1.0, max(self.global_step / cfg.max_steps, t))

        def configure_optimizers(self):
            params = [p for p in self.parameters() if p.requires_grad]
            return warmup_cosine(params, cfg.lr, cfg.warmup_steps, cfg.max_steps, progress=lambda _: self.progress(),
                                 weight_decay=0.0)
    return TTSModule()


def dev_losses(syn: Synthesiser, targets: list[dict], batch: int = 16) -> dict:
    syn.eval()
    out: dict[str, list[float]] = {}
    with torch.no_grad():
        for i in range(0, len(targets), batch):
            _, stats = syn.loss(targets[i:i + batch])
            for k, v in stats.items():
                out.setdefault(k, []).append(float(v))
    return {k: round(float(np.mean(v)), 4) for k, v in out.items() if "alpha" not in k}


def train_tts(out: str | os.PathLike | None = None, cfg: TrainTTSConfig | None = None,
              trainer_kwargs: dict | None = None, log=print) -> dict:
    """Train one synthesiser and save it to ``out`` (default ``data/models/tts_<system>``; written beside it, then
    renamed)."""
    import lightning.pytorch as pl
    from ..files import replace_dir
    cfg = cfg or TrainTTSConfig()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out = Path(out or default_dir(cfg.tts.system))
    t0 = time.time()
    train = build("train", cfg.n_train, cfg.corpus, cfg.workers, cfg.cache)
    dev = build("dev", cfg.n_dev, cfg.corpus, cfg.workers, cfg.cache)
    t_prep = time.time() - t0
    log(f"tts data: {len(train)} train / {len(dev)} dev utterances ({t_prep:.0f} s)")
    syn = new_synthesiser(cfg.tts, vocabulary(train))
    allp = np.concatenate([it["params"] for it in train])
    syn.mu.copy_(torch.from_numpy(allp.mean(0)))
    syn.sd.copy_(torch.from_numpy(allp.std(0) + 1e-3))
    train_t = [syn.targets(it) for it in train]
    dev_t = [syn.targets(it) for it in dev]
    dev_batches = [dev_t[i:i + cfg.batch_size] for i in range(0, len(dev_t), cfg.batch_size)]
    tmp = out.with_name(f".{out.name}.training-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        kw = dict(max_steps=cfg.max_steps, max_time={"minutes": cfg.max_minutes}, accelerator="auto", devices=1,
                  logger=False, enable_checkpointing=False, val_check_interval=cfg.val_every,
                  check_val_every_n_epoch=None, num_sanity_val_steps=0, enable_progress_bar=False,
                  gradient_clip_val=1.0, limit_val_batches=len(dev_batches))
        kw.update(trainer_kwargs or {})
        module = _module(syn, cfg)
        loader = torch.utils.data.DataLoader
        trainer = pl.Trainer(**kw)
        trainer.fit(module, train_dataloaders=loader(Batches(train_t, cfg.batch_size, cfg.seed), batch_size=None,
                                                     collate_fn=lambda b: b),
                    val_dataloaders=loader(dev_batches, batch_size=None, collate_fn=lambda b: b))
        finish_ranks(trainer)                       # DDP: rank 0 goes on to export
        syn = module.syn.cpu()
        meta = {"steps": int(trainer.global_step), "train_seconds": round(time.time() - t0 - t_prep, 1),
                "prepare_seconds": round(t_prep, 1), "dev_losses": dev_losses(syn, dev_t),
                "train_utterances": len(train), "train_hours": round(len(allp) / 100 / 3600, 2),
                "params": sum(p.numel() for p in syn.parameters()),
                "trainable_params": sum(p.numel() for p in syn.parameters() if p.requires_grad),
                "train_config": {k: v for k, v in asdict(cfg).items() if k not in ("tts",)}}
        syn.save(tmp, extra={"training": meta})
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if cfg.calibrate_texts:
        from .tandem import calibrate
        meta["fidelity"] = calibrate(out, cfg.calibrate_texts)
    log(f"tts {cfg.tts.system}: {meta['steps']} steps in {meta['train_seconds']:.0f} s, dev losses "
        f"{meta['dev_losses']} -> {out}")
    return meta
