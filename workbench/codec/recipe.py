"""``python -m workbench train-codec``: the codec recipe on the corpus's clean speech (Lightning, any device).

Data: WORLD parameters of the clean utterances of the train split (every synthesiser and speaker the corpus
has), and, as the semantic teacher, the shipped streaming ASR model's encoder output for the same audio (80 ms
frames, full context). Loss: L1 on the parameters (envelope weighted as ``spec_weights`` says, log F0 only where
voiced), and 1 - cosine between the semantic group's prediction and the teacher. A ``semantic_only_share`` of
the steps decodes from the semantic group alone. Random 2 s crops. Training stops at ``max_steps`` or
``max_minutes``, whichever comes first. FSQ has no codebooks to initialise or revive, so there is no warm-up.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from . import world
from .model import MODEL_DIR, CodecConfig, SpeechCodec
from ..scale import finish_ranks, shard

CACHE = Path(os.environ.get("WORKBENCH_CACHE") or Path(__file__).resolve().parents[2] / "data" / "cache") / "codec"
TEACHER = Path(__file__).resolve().parents[2] / "data" / "models" / "asr_small" / "model.nemo"
TEACHER_HOP = 8          # WORLD frames (10 ms) per ASR encoder frame (80 ms)


@dataclass
class TrainConfig:
    codec: CodecConfig = field(default_factory=CodecConfig)
    train_utterances: int = 4000
    dev_utterances: int = 200
    crop_frames: int = 200
    batch_size: int = 16
    lr: float = 1e-3
    max_steps: int = 20000
    max_minutes: float = 13.0
    spec_loss: str = "log_spectral"           # or "standardised" (see spec_weights)
    semantic_only_share: float = 0.1          # steps decoded from the semantic group alone
    val_every: int = 200
    distill_weight: float = 1.0
    threads: int = 2
    workers: int = 2
    seed: int = 0
    cache: bool = True

    def __post_init__(self):
        if self.spec_loss not in ("log_spectral", "standardised"):
            raise ValueError(f"spec_loss must be 'log_spectral' or 'standardised', got {self.spec_loss!r}")
        if not 0.0 <= self.semantic_only_share < 1.0:
            raise ValueError(f"semantic_only_share must be in [0, 1), got {self.semantic_only_share}")


def _analyse(path: str) -> np.ndarray:
    import soundfile as sf
    x, sr = sf.read(path, dtype="float32")
    return world.analyse(x, sr)


def teacher_outputs(paths: list[str], model_path=TEACHER) -> list[np.ndarray]:
    """The ASR encoder's output (frames, d_model) for each file: full context, no streaming cache."""
    import soundfile as sf
    from ..asr.streaming import load_model
    m = load_model(model_path, device="cpu").eval()
    out = []
    with torch.inference_mode():
        for p in paths:
            x, _ = sf.read(p, dtype="float32")
            sig = torch.from_numpy(x)[None]
            feats, flen = m.preprocessor(input_signal=sig, length=torch.tensor([sig.shape[1]]))
            enc, elen = m.encoder(audio_signal=feats, length=flen)
            out.append(enc[0, :, : int(elen[0])].T.numpy().astype(np.float16))
    return out


def prepare(corpus_size: str, split: str, n: int, workers: int = 2, seed: int = 0, cache: bool = True) -> dict:
    """WORLD parameters + teacher outputs of ``n`` clean utterances of a split (cached under data/cache/codec
    unless ``cache`` is false)."""
    from ..data import ensure_corpus, open_dataset
    from ..data.dataset import is_clean
    corpus = ensure_corpus(corpus_size)
    ds = open_dataset(corpus, split).filter(is_clean)
    entries = list(ds.entries)
    rng = np.random.default_rng(seed)
    if len(entries) > n:
        entries = [entries[i] for i in sorted(rng.choice(len(entries), n, replace=False))]
    key = f"{Path(corpus).name}-{split}-{len(entries)}-s{seed}-v2"
    f = CACHE / f"{key}.pt"
    if cache and f.is_file():
        return torch.load(f, weights_only=False)
    paths = [e["audio_filepath"] for e in entries]
    with get_context("spawn").Pool(workers) as pool:
        params = pool.map(_analyse, paths, chunksize=16)
    teach = teacher_outputs(paths)
    data = {"ids": [e["id"] for e in entries], "params": params, "teacher": teach}
    if not cache:
        return data
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(f".tmp{os.getpid()}")
    torch.save(data, tmp)
    tmp.replace(f)
    return data


class Crops(torch.utils.data.IterableDataset):
    """Endless random crops, aligned to teacher frames, batched."""

    def __init__(self, data: dict, crop: int, batch: int, seed: int):
        self.params, self.teacher = data["params"], data["teacher"]
        self.crop, self.batch, self.seed = crop, batch, seed
        self.keep = [i for i, p in enumerate(self.params) if len(p) >= crop]

    def __iter__(self):
        rng, keep = np.random.default_rng(self.seed), shard(self.keep)      # each DDP rank its own utterances
        while True:
            yield crop_batch(self.params, self.teacher, rng.choice(keep, self.batch), self.crop, rng)


def crop_batch(params, teacher, idx, crop: int, rng=None):
    xs, ts = [], []
    nt = crop // TEACHER_HOP
    for i in idx:
        p, t = params[i], teacher[i]
        hi = min((len(p) - crop) // TEACHER_HOP, max(0, len(t) - nt))
        s = int(rng.integers(0, hi + 1)) if rng is not None and hi > 0 else 0
        xs.append(p[s * TEACHER_HOP: s * TEACHER_HOP + crop])
        tt = np.asarray(t[s: s + nt], np.float32)
        if len(tt) < nt:
            tt = np.concatenate([tt, np.repeat(tt[-1:], nt - len(tt), 0)])
        ts.append(tt)
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ts))


def spec_weights(model: SpeechCodec, cfg: "TrainConfig") -> torch.Tensor:
    """Per-coefficient weights of the envelope loss. ``log_spectral``: each standardised coefficient weighted
    by its spread, so the loss is the L1 of the coded (cepstral) envelope itself: by Parseval, close to a
    log-mel spectral distance, and the noisy high orders no longer count as much as the formants. ``standardised``:
    every coefficient alike. Band aperiodicity keeps weight 1."""
    n = world.N_KEEP
    w = torch.ones(n + world.n_ap(), device=model.sd.device)
    if cfg.spec_loss == "log_spectral":
        sd = model.sd[:n].clone()
        sd[0] = sd[1]                 # c0 is loudness, whose spread is mostly speech against silence
        w[:n] = sd / sd.mean()
    return w[None, :, None]


def losses(model: SpeechCodec, x: torch.Tensor, teacher: torch.Tensor, cfg: "TrainConfig",
           semantic_only: bool = False) -> dict:
    recon, q = model(x, semantic_only=semantic_only)
    target = model.normalise(x)
    k = world.N_KEEP + world.n_ap()
    voiced = (x[:, :, -1] > 0.5).float()[:, None, :]
    spec = ((recon[:, :k] - target[:, :k]).abs() * spec_weights(model, cfg)).mean()
    f0 = ((recon[:, k] - target[:, k]).abs() * voiced[:, 0]).sum() / voiced.sum().clamp(min=1.0)
    vuv = (recon[:, k + 1] - target[:, k + 1]).abs().mean()
    out = {"spec": spec, "f0": f0, "vuv": vuv}
    loss = spec + f0 + vuv
    if model.teacher_head is not None:
        pred = model.teacher_prediction(q)
        n = min(pred.shape[1], teacher.shape[1])
        out["distill"] = 1 - torch.nn.functional.cosine_similarity(pred[:, :n], teacher[:, :n], dim=-1).mean()
        loss = loss + cfg.distill_weight * out["distill"]
    out["loss"] = loss
    return out


def _module(model: SpeechCodec, cfg: TrainConfig):
    import lightning.pytorch as pl

    class CodecModule(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model

        def training_step(self, batch, _):
            sem = bool(torch.rand(()) < cfg.semantic_only_share)
            out = losses(self.model, *batch, cfg, semantic_only=sem)
            for k, v in out.items():
                self.log(f"train_{'semantic_' if sem else ''}{k}", v, prog_bar=k == "loss", batch_size=cfg.batch_size)
            return out["loss"]

        def validation_step(self, batch, _):
            out = losses(self.model, *batch, cfg)
            for k, v in out.items():
                self.log(f"val_{k}", v, batch_size=batch[0].shape[0])

        def on_train_start(self):
            self.t0 = time.time()

        def progress(self) -> float:
            """Share of the budget spent: steps or wall-clock, whichever runs out first."""
            t = (time.time() - self.t0) / (cfg.max_minutes * 60) if hasattr(self, "t0") else 0.0
            return min(1.0, max(self.global_step / cfg.max_steps, t))

        def configure_optimizers(self):                 # cosine decay to 5 % over the budget
            from ..lm.domain import warmup_cosine
            return warmup_cosine(self.parameters(), cfg.lr, 0, cfg.max_steps, progress=lambda _: self.progress(),
                                 weight_decay=0.0, betas=(0.8, 0.99))
    return CodecModule()


def train_codec(corpus_size: str = "default", out: str | os.PathLike | None = None, cfg: TrainConfig | None = None,
                trainer_kwargs: dict | None = None, log=print) -> dict:
    """Train the codec and save it to ``out`` (default ``data/models/codec``; written beside it, then renamed)."""
    import lightning.pytorch as pl
    from ..files import replace_dir
    cfg = cfg or TrainConfig()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out = Path(out or MODEL_DIR)
    t0 = time.time()
    train = prepare(corpus_size, "train", cfg.train_utterances, cfg.workers, cfg.seed, cfg.cache)
    dev = prepare(corpus_size, "dev", cfg.dev_utterances, cfg.workers, cfg.seed, cfg.cache)
    t_prep = time.time() - t0
    log(f"codec data: {len(train['params'])} train / {len(dev['params'])} dev utterances ({t_prep:.0f} s)")
    allp = np.concatenate(train["params"])
    ccfg = CodecConfig(**{**asdict(cfg.codec), "teacher_dim": int(train["teacher"][0].shape[1])})
    model = SpeechCodec(ccfg, dim=allp.shape[1])
    model.mu.copy_(torch.from_numpy(allp.mean(0)))
    model.sd.copy_(torch.from_numpy(allp.std(0) + 1e-3))
    rng = np.random.default_rng(cfg.seed + 1)
    keep = [i for i, p in enumerate(dev["params"]) if len(p) >= cfg.crop_frames]
    dev_batches = [crop_batch(dev["params"], dev["teacher"], keep[i:i + 32], cfg.crop_frames, rng)
                   for i in range(0, len(keep), 32)]
    tmp = out.with_name(f".{out.name}.training-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        kw = dict(max_steps=cfg.max_steps, max_time={"minutes": cfg.max_minutes}, accelerator="auto", devices=1,
                  logger=False, enable_checkpointing=False, val_check_interval=cfg.val_every, check_val_every_n_epoch=None,
                  num_sanity_val_steps=0, enable_progress_bar=False, gradient_clip_val=1.0,
                  limit_val_batches=len(dev_batches))
        kw.update(trainer_kwargs or {})
        trainer = pl.Trainer(**kw)
        module = _module(model, cfg)
        loader = torch.utils.data.DataLoader
        trainer.fit(module, train_dataloaders=loader(Crops(train, cfg.crop_frames, cfg.batch_size, cfg.seed),
                                                     batch_size=None),
                    val_dataloaders=loader(dev_batches, batch_size=None))
        finish_ranks(trainer)                       # DDP: rank 0 goes on to export
        model = module.model.cpu().eval()
        with torch.no_grad():
            dev_losses = {k: round(float(np.mean([float(losses(model, *b, cfg)[k]) for b in dev_batches])), 4)
                          for k in ("spec", "f0", "vuv", "distill") if k != "distill" or model.teacher_head}
            dev_losses["spec_semantic_only"] = round(float(np.mean(
                [float(losses(model, *b, cfg, semantic_only=True)["spec"]) for b in dev_batches])), 4)
            codes = torch.cat([model.codes_from_params(b[0]) for b in dev_batches], 0)
        usage = [int(len(torch.unique(codes[:, g]))) for g in range(ccfg.groups)]
        meta = {"steps": int(trainer.global_step), "train_seconds": round(time.time() - t0 - t_prep, 1),
                "prepare_seconds": round(t_prep, 1), "dev_losses": dev_losses,
                "dev_codes_used": usage, "train_utterances": len(train["params"]), "train_hours": round(len(allp) * world.FRAME_S / 3600, 2),
                "params": sum(p.numel() for p in model.parameters()),
                "train_config": {k: v for k, v in asdict(cfg).items() if k != "codec"}}
        model.save(tmp, extra={"training": meta})
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"codec: {meta['steps']} steps in {meta['train_seconds']:.0f} s, dev losses {meta['dev_losses']}, "
        f"{ccfg.frame_rate:g} Hz, {ccfg.bitrate:g} bps -> {out}")
    return meta
