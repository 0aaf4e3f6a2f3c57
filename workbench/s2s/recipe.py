"""``train-s2s``: the speech-to-speech LM in five stages, each saving a checkpoint and a metric.

1. **Modality pretraining.** The text LM is the domain LM (``train-lm``; its dev perplexity is recorded here).
   The speech-unit LM is a Llama of the same shape that learns codec tokens alone (next-code loss).
2. **Intermodal alignment.** The text LM's body and word table stay frozen. The codec tables (started from
   stage 1's) and the control tokens learn ASR, TTS and interleaved turns, so speech lands where the text
   LM already means the same words (a frozen LLM with trained modality tables, as SALM and SpeechGPT do).
3. **Initialisation.** The s2s LM is put together from stages 1-2. The task tokens it has not seen yet
   (``<s2s>``, ``<translate>``) start at the text LM's mean embedding of the words that name them, so each task
   begins by meaning its name. Nothing is trained; the dialogue loss is measured zero-shot for the ablation.
4. **Multitask fine-tuning**, everything trainable: spoken dialogue and translation, with ASR, TTS and the
   self-supervised continuation kept in the mix.
5. **Alignment** by DPO (Rafailov et al., 2023) against the stage-4 model as reference. The preferred answer
   is right and follows the user's mood. The rejected one is another request's answer, or the right words
   delivered against the mood.
   - Why not TRL's ``DPOTrainer``: it needs a single-stream Hugging Face causal LM, and this model has nine
     streams. The loss is the paper's formula over the same label masks that training uses.

Why not NeMo's ``speechlm2.DuplexS2SModel``: it makes the same choices (channels summed at the input, a head per
codebook), but it loads its codec only as a NeMo ``AudioCodecModel`` checkpoint, and NeMo's safe instantiation
refuses a codec class from outside NeMo. Its wheel also has no training scripts for the stages.

The CPU default fits all five stages in about two hours on 2 cores with the domain LM. The ``gpu`` profile starts
from SmolLM2-135M and uses more dialogues.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import data as D
from .layout import Layout, collate
from .model import SpeechTextLM
from ..scale import finish_ranks, multi_process, shard

MODELS = Path(__file__).resolve().parents[2] / "data" / "models"
WORK = D.CACHE / "stages"
FORMAT = "workbench-s2s-v1"
CURVE_EVERY = 10                                  # training loss kept every this many steps (the notebook's curves)


class S2SModelError(RuntimeError):
    """A stage checkpoint that is missing or of another format, or a stage asked for out of order."""


@dataclass
class StageBudget:
    minutes: float
    lr: float
    batch_size: int = 16
    max_steps: int = 100_000


@dataclass
class S2SConfig:
    lm: str = "domain"                        # the text LM: "domain" (data/models/lm_domain) or a folder
    n_train: int = 1200
    n_dev: int = 48
    corpus_size: str = "default"
    codec_dir: str | None = None              # default: data/models/codec
    max_positions: int = 512                  # a 3 s request + answer text + 4 s answer < 300 steps
    stage1: StageBudget = field(default_factory=lambda: StageBudget(20, 2e-3))
    stage2: StageBudget = field(default_factory=lambda: StageBudget(20, 2e-3))
    stage4: StageBudget = field(default_factory=lambda: StageBudget(40, 5e-4, 8))
    stage5: StageBudget = field(default_factory=lambda: StageBudget(15, 2e-5, 8))
    mix4: dict = field(default_factory=lambda: {"s2s": 0.55, "asr": 0.15, "tts": 0.15, "continuation": 0.15})
    dpo_beta: float = 0.1
    val_every: int = 100
    threads: int = 2
    workers: int = 2
    seed: int = 0
    cache: bool = True
    data_root: str | None = None              # where dialogues are rendered (default data/cache/s2s)


PROFILES = {"cpu": {}, "gpu": {"lm": "smollm2", "n_train": 8000, "n_dev": 200, "threads": 8, "workers": 8}}


# --- checkpoints ------------------------------------------------------------------------------------------------
def save(model: SpeechTextLM, tok, folder: Path, meta: dict) -> Path:
    """A stage's model beside its final place, then swapped in (files.replace_dir)."""
    from ..files import replace_dir
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        torch.save(model.state_dict(), tmp / "model.pt")
        tok.save_pretrained(tmp / "tokenizer")
        (tmp / "s2s.json").write_text(json.dumps({"format": FORMAT, "layout": asdict(model.layout),
                                                  "llama": model.body.config.to_dict(), **meta}, indent=1, default=str))
        return replace_dir(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load(folder) -> tuple[SpeechTextLM, object, dict]:
    """(model, tokenizer, meta) of a saved stage."""
    from transformers import AutoTokenizer, LlamaConfig
    folder = Path(folder)
    f = folder / "s2s.json"
    if not f.is_file():
        raise S2SModelError(f"no speech-to-speech model in {folder} (run python -m workbench train-s2s)")
    meta = json.loads(f.read_text())
    if meta.get("format") != FORMAT:
        raise S2SModelError(f"{folder}: format {meta.get('format')!r}, this workbench reads {FORMAT!r}")
    model = SpeechTextLM(Layout(**meta["layout"]), LlamaConfig(**meta["llama"]))
    model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True))
    tok = AutoTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
    return model.eval(), tok, meta


def _stage_dir(stage: int, work: Path) -> Path:
    return Path(work) / f"stage{stage}"


def _previous(stage: int, work: Path):
    f = _stage_dir(stage, work)
    if not (f / "s2s.json").is_file():
        raise S2SModelError(f"stage {stage + 1} starts from stage {stage}, which is not in {f}: run "
                            f"python -m workbench train-s2s --stage {stage}")
    return load(f)


# --- the pieces -------------------------------------------------------------------------------------------------
def text_lm(cfg: S2SConfig):
    from ..lm.load import SMOLLM2, load_causal_lm, smollm2_folder
    if cfg.lm == "domain":
        path = MODELS / "lm_domain"
    elif cfg.lm in ("smollm2", SMOLLM2):
        path = smollm2_folder()
    else:
        path = Path(cfg.lm)
    return load_causal_lm(path, device="cpu")


def layout_for(tok, codec) -> Layout:
    return Layout(n_text=len(tok), n_q=codec.cfg.n_q, bins=codec.cfg.bins)


def llama_config(lm, cfg: S2SConfig):
    from transformers import LlamaConfig
    c = lm.model.config.to_dict()
    c.update(max_position_embeddings=cfg.max_positions, vocab_size=c["vocab_size"], tie_word_embeddings=False)
    return LlamaConfig(**{k: v for k, v in c.items() if k not in ("architectures", "_name_or_path")})


def from_text_lm(lm, lay: Layout, cfg: S2SConfig) -> SpeechTextLM:
    """A SpeechTextLM whose body and word table are the text LM's; the control tokens start at its mean word."""
    model = SpeechTextLM(lay, llama_config(lm, cfg))
    src = lm.model.model.state_dict()
    missing, unexpected = model.body.load_state_dict({k: v for k, v in src.items() if not k.startswith("embed_tokens")},
                                                     strict=False)
    if unexpected or [k for k in missing if not k.startswith("embed_tokens")]:
        raise S2SModelError(f"the text LM's body does not fit: missing {missing}, unexpected {unexpected}")
    words = lm.model.get_input_embeddings().weight.detach()
    with torch.no_grad():
        model.text_emb.weight[: lay.n_text] = words
        model.text_emb.weight[lay.n_text:] = words.mean(0)
    return model


def name_init(model: SpeechTextLM, tok, names: dict[str, str]) -> None:
    """Start each control token at the mean embedding of the words that name it (stage 3)."""
    lay = model.layout
    with torch.no_grad():
        for special, words in names.items():
            ids = D._ids(tok, words)
            model.text_emb.weight[lay.special(special)] = model.text_emb.weight[list(ids)].mean(0)


class Mix(torch.utils.data.IterableDataset):
    """Endless batches of turns, each of a task drawn by the mix's weights."""

    def __init__(self, rows, makers: dict, weights: dict, lay: Layout, batch_size: int, seed: int):
        super().__init__()
        self.rows, self.makers, self.lay, self.bs, self.seed = rows, makers, lay, batch_size, seed
        self.tasks = list(weights)
        w = np.array([weights[t] for t in self.tasks], float)
        self.p = w / w.sum()

    def __iter__(self):
        rng, rows = np.random.default_rng(self.seed), shard(self.rows)        # each DDP rank its own dialogues
        while True:
            turns = []
            for _ in range(self.bs):
                task = self.tasks[int(rng.choice(len(self.tasks), p=self.p))]
                turns.append(self.lay.build(self.makers[task](rows[int(rng.integers(len(rows)))], rng)))
            yield collate(turns, self.lay)


def makers(lay: Layout, tok) -> dict:
    return {"continuation": lambda r, rng: D.continuation(lay, r, "request" if rng.random() < 0.5 else "response"),
            "asr": lambda r, rng: D.asr(lay, tok, r, "request" if rng.random() < 0.5 else "response"),
            "tts": lambda r, rng: D.tts(lay, tok, r),
            "interleaved": lambda r, rng: D.interleaved(lay, tok, r, rng),
            "s2s": lambda r, rng: D.s2s(lay, tok, r)}


def dev_losses(model: SpeechTextLM, rows, make: dict, tasks: list[str], lay: Layout, seed: int = 0) -> dict:
    """Mean dev loss per task (text and audio parts), the same turns every call."""
    model.eval()
    out = {}
    with torch.no_grad():
        for task in tasks:
            rng = np.random.default_rng([seed, 99])
            turns = [lay.build(make[task](r, rng)) for r in rows]
            parts: dict[str, list[float]] = {}
            for i in range(0, len(turns), 16):
                _, p = model.loss(collate(turns[i:i + 16], lay))
                for k, v in p.items():
                    parts.setdefault(k, []).append(v)
            out[task] = {k: round(float(np.mean(v)), 4) for k, v in parts.items()}
    return out


def _fit(model: SpeechTextLM, train_rows, dev_rows, make, weights: dict, lay: Layout, budget: StageBudget,
         cfg: S2SConfig, trainer_kwargs: dict | None, log, weight_decay: float = 0.01) -> dict:
    import lightning.pytorch as pl

    from ..lm.domain import warmup_cosine

    class Stage(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model

        def training_step(self, batch, _):
            loss, parts = self.model.loss(batch)
            self.log("train_loss", loss, prog_bar=True, batch_size=batch["text"].shape[0])
            if self.global_step % CURVE_EVERY == 0:
                curve.append([int(self.global_step), round(float(loss), 4)])
            return loss

        def on_train_start(self):
            self.t0 = time.time()
            self.model.train()

        def progress(self) -> float:
            t = (time.time() - self.t0) / (budget.minutes * 60) if hasattr(self, "t0") else 0.0
            return min(1.0, max(self.global_step / budget.max_steps, t))

        def configure_optimizers(self):
            return warmup_cosine([p for p in self.parameters() if p.requires_grad], budget.lr, 50, budget.max_steps,
                                 progress=lambda _: self.progress(), weight_decay=weight_decay)

    kw = dict(max_steps=budget.max_steps, max_time={"seconds": budget.minutes * 60}, accelerator="auto", devices=1,
              logger=False, enable_checkpointing=False, enable_progress_bar=False, gradient_clip_val=1.0,
              limit_val_batches=0, num_sanity_val_steps=0)
    kw.update(trainer_kwargs or {})
    trainer = pl.Trainer(**kw)
    t0 = time.time()
    curve: list = []                                   # [step, training loss] every CURVE_EVERY steps
    module = Stage()
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(
        Mix(train_rows, make, weights, lay, budget.batch_size, cfg.seed), batch_size=None))
    finish_ranks(trainer)                              # DDP: rank 0 goes on to the dev losses and the save
    model.cpu()
    dl = dev_losses(model, dev_rows, make, list(weights), lay, cfg.seed)
    log(f"  {trainer.global_step} steps in {time.time() - t0:.0f} s; dev {dl}")
    return {"steps": int(trainer.global_step), "train_seconds": round(time.time() - t0, 1), "dev": dl, "curve": curve}


# --- the stages -------------------------------------------------------------------------------------------------
def _data(cfg: S2SConfig, log):
    t0 = time.time()
    root = Path(cfg.data_root) if cfg.data_root else D.CACHE
    train = D.prepare("train", cfg.n_train, cfg.seed, cfg.corpus_size, cfg.codec_dir, cfg.workers, cfg.cache, root, log)
    dev = D.prepare("dev", cfg.n_dev, cfg.seed, cfg.corpus_size, cfg.codec_dir, cfg.workers, cfg.cache, root, log)
    log(f"s2s data: {len(train)} train / {len(dev)} dev dialogues ({time.time() - t0:.0f} s)")
    return train, dev


def stage1(cfg: S2SConfig, work: Path, trainer_kwargs=None, log=print) -> dict:
    from ..codec.model import load_codec
    from ..lm.domain import perplexity
    train, dev = _data(cfg, log)
    lm = text_lm(cfg)
    lay = layout_for(lm.tokenizer, load_codec(cfg.codec_dir))
    ppl = perplexity(lm, [r["response_text"].lower() for r in dev])
    log(f"stage 1: text LM {lm.name}: dev perplexity on the answers {ppl:.1f}; the speech-unit LM learns codes")
    model = SpeechTextLM(lay, llama_config(lm, cfg))
    fit = _fit(model, train, dev, makers(lay, lm.tokenizer), {"continuation": 1.0}, lay, cfg.stage1, cfg,
               trainer_kwargs, log)
    meta = {"stage": 1, "text_lm": lm.name, "text_lm_dev_perplexity": round(ppl, 2), **fit}
    save(model, lm.tokenizer, _stage_dir(1, work), meta)
    return meta


def stage2(cfg: S2SConfig, work: Path, trainer_kwargs=None, log=print) -> dict:
    speech, tok, _ = _previous(1, work)
    train, dev = _data(cfg, log)
    lm = text_lm(cfg)
    lay = speech.layout
    model = from_text_lm(lm, lay, cfg)
    with torch.no_grad():
        model.audio_emb.weight.copy_(speech.audio_emb.weight)
    for p in model.body.parameters():
        p.requires_grad_(False)
    keep = torch.zeros(lay.text_vocab, 1)
    keep[lay.n_text:] = 1.0                          # only the control tokens' rows of the word table learn
    model.text_emb.weight.register_hook(lambda g: g * keep.to(g.device))
    log("stage 2: text LM body and words frozen; codec tables and control tokens learn ASR, TTS, interleaved")
    fit = _fit(model, train, dev, makers(lay, tok), {"asr": 1.0, "tts": 1.0, "interleaved": 1.0}, lay, cfg.stage2,
               cfg, trainer_kwargs, log, weight_decay=0.0)      # decay would move the frozen rows
    for p in model.body.parameters():
        p.requires_grad_(True)
    save(model, tok, _stage_dir(2, work), {"stage": 2, **fit})
    return {"stage": 2, **fit}


def stage3(cfg: S2SConfig, work: Path, log=print) -> dict:
    model, tok, _ = _previous(2, work)
    _, dev = _data(cfg, log)
    name_init(model, tok, {"<s2s>": "answer", "<translate>": "translate"})
    lay = model.layout
    dl = dev_losses(model, dev, makers(lay, tok), ["s2s"], lay, cfg.seed)
    log(f"stage 3: s2s LM initialised from stages 1-2; zero-shot dev {dl}")
    meta = {"stage": 3, "steps": 0, "dev": dl, "init": {"<s2s>": "answer", "<translate>": "translate"}}
    save(model, tok, _stage_dir(3, work), meta)
    return meta


def stage4(cfg: S2SConfig, work: Path, trainer_kwargs=None, log=print) -> dict:
    model, tok, _ = _previous(3, work)
    train, dev = _data(cfg, log)
    lay = model.layout
    log(f"stage 4: multitask fine-tuning, mix {cfg.mix4}")
    fit = _fit(model, train, dev, makers(lay, tok), cfg.mix4, lay, cfg.stage4, cfg, trainer_kwargs, log)
    save(model, tok, _stage_dir(4, work), {"stage": 4, **fit})
    return {"stage": 4, **fit}


def sequence_logp(model: SpeechTextLM, batch: dict) -> torch.Tensor:
    """Each turn's summed log-probability of its learnt steps (text and codes): DPO's log pi(y|x)."""
    from .layout import IGNORE
    tl, al, _ = model(batch["text"], batch["audio"], batch.get("attention_mask"))
    out = torch.zeros(tl.shape[0], device=tl.device)
    for logits, labels, dims in ((tl, batch["text_labels"], (1,)), (al, batch["audio_labels"], (1, 2))):
        m = labels != IGNORE
        lp = logits.log_softmax(-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        out = out + (lp * m).sum(dims)
    return out


def dpo_loss(policy: SpeechTextLM, reference: SpeechTextLM, chosen: dict, rejected: dict, beta: float):
    """Rafailov et al. (2023), eq. 7: -log sigmoid(beta * (policy's log-ratio margin - reference's))."""
    pc, pr = sequence_logp(policy, chosen), sequence_logp(policy, rejected)
    with torch.no_grad():
        rc, rr = sequence_logp(reference, chosen), sequence_logp(reference, rejected)
    margin = beta * ((pc - rc) - (pr - rr))
    return -torch.nn.functional.logsigmoid(margin).mean(), margin.detach()


def preference_accuracy(model: SpeechTextLM, pairs, lay: Layout) -> dict:
    """Share of pairs where the model gives the chosen answer more probability than the rejected one, per kind."""
    model.eval()
    wins: dict[str, list[bool]] = {}
    with torch.no_grad():
        for i in range(0, len(pairs), 8):
            part = pairs[i:i + 8]
            c = sequence_logp(model, collate([lay.build(p[0]) for p in part], lay))
            r = sequence_logp(model, collate([lay.build(p[1]) for p in part], lay))
            for (_, _, kind), w in zip(part, (c > r).tolist()):
                wins.setdefault(kind, []).append(bool(w))
    from ..stats import rate_ci
    return {k: rate_ci(sum(v), len(v)) for k, v in wins.items()}


def stage5(cfg: S2SConfig, work: Path, trainer_kwargs=None, log=print) -> dict:
    import copy

    import lightning.pytorch as pl

    from ..lm.domain import warmup_cosine
    policy, tok, _ = _previous(4, work)
    train, dev = _data(cfg, log)
    lay = policy.layout
    key = f"{cfg.n_train}-{cfg.n_dev}-s{cfg.seed}-{cfg.corpus_size}"
    root = Path(cfg.data_root) if cfg.data_root else D.CACHE
    against_train = D.against_mood(train, cfg.codec_dir, cfg.workers, f"train-{key}" if cfg.cache else None, root)
    against_dev = D.against_mood(dev, cfg.codec_dir, cfg.workers, f"dev-{key}" if cfg.cache else None, root)
    rng = np.random.default_rng(cfg.seed + 5)
    train_pairs = D.preference_pairs(lay, tok, train, against_train, rng)
    dev_pairs = D.preference_pairs(lay, tok, dev, against_dev, np.random.default_rng(cfg.seed + 6))
    reference = copy.deepcopy(policy).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    before = preference_accuracy(policy, dev_pairs, lay)
    log(f"stage 5: DPO on {len(train_pairs)} pairs; dev preference accuracy before {before}")
    budget, beta = cfg.stage5, cfg.dpo_beta

    class Pairs(torch.utils.data.IterableDataset):
        def __iter__(self):
            r, pairs = np.random.default_rng(cfg.seed), shard(train_pairs)     # each DDP rank its own pairs
            while True:
                part = [pairs[int(i)] for i in r.integers(len(pairs), size=budget.batch_size)]
                yield (collate([lay.build(p[0]) for p in part], lay), collate([lay.build(p[1]) for p in part], lay))

    class DPO(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = policy

        def training_step(self, batch, _):
            loss, margin = dpo_loss(self.model, reference.to(self.device), *batch, beta)
            self.log("train_dpo", loss, prog_bar=True, batch_size=budget.batch_size)
            if self.global_step % CURVE_EVERY == 0:
                curve.append([int(self.global_step), round(float(loss), 4)])
            return loss

        def on_train_start(self):
            self.t0 = time.time()
            self.model.train()

        def configure_optimizers(self):
            prog = lambda _: min(1.0, (time.time() - getattr(self, "t0", time.time())) / (budget.minutes * 60))  # noqa
            return warmup_cosine(self.parameters(), budget.lr, 10, budget.max_steps, progress=prog)

    kw = dict(max_steps=budget.max_steps, max_time={"seconds": budget.minutes * 60}, accelerator="auto", devices=1,
              logger=False, enable_checkpointing=False, enable_progress_bar=False, gradient_clip_val=1.0,
              limit_val_batches=0, num_sanity_val_steps=0)
    kw.update(trainer_kwargs or {})
    trainer = pl.Trainer(**kw)
    t0 = time.time()
    curve: list = []
    trainer.fit(DPO(), train_dataloaders=torch.utils.data.DataLoader(Pairs(), batch_size=None))
    finish_ranks(trainer)
    policy.cpu()
    after = preference_accuracy(policy, dev_pairs, lay)
    dl = dev_losses(policy, dev, makers(lay, tok), ["s2s"], lay, cfg.seed)
    log(f"  {trainer.global_step} steps in {time.time() - t0:.0f} s; dev preference accuracy after {after}; dev {dl}")
    meta = {"stage": 5, "steps": int(trainer.global_step), "train_seconds": round(time.time() - t0, 1), "dev": dl,
            "pairs": {"train": len(train_pairs), "dev": len(dev_pairs)}, "preference_before": before,
            "preference_after": after, "beta": beta, "curve": curve}
    save(policy, tok, _stage_dir(5, work), meta)
    return meta


STAGES = {1: stage1, 2: stage2, 3: stage3, 4: stage4, 5: stage5}


def train_s2s(stage: int | str = "all", cfg: S2SConfig | None = None, work=WORK, out=None, trainer_kwargs=None,
              log=print) -> dict:
    """Run one stage (or all, in order); stage 5's model is the shipped default (``out``, default
    ``data/models/s2s``), with every stage's record in its ``s2s.json``."""
    todo = list(STAGES) if stage == "all" else [int(stage)]
    if any(s not in STAGES for s in todo):
        raise S2SModelError(f"stage must be 1-5 or 'all', got {stage!r}")
    if len(todo) > 1 and multi_process(trainer_kwargs or {}):
        raise S2SModelError("with several processes run the stages one command each (--stage 1, then 2, ... 5): "
                            "Lightning's ddp starts the other ranks by running the command again, for one fit")
    cfg = cfg or S2SConfig()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    work = Path(work)
    records = {}
    for s in todo:
        kw = {} if s == 3 else {"trainer_kwargs": trainer_kwargs}
        records[s] = STAGES[s](cfg, work, log=log, **kw)
        (work / "records.json").write_text(json.dumps({**_records(work), str(s): records[s]}, indent=1, default=str))
    if 5 in todo:
        model, tok, meta = load(_stage_dir(5, work))
        save(model, tok, Path(out or MODELS / "s2s"), {**meta, "stages": _records(work),
                                                         "config": asdict(cfg)})
    return records


def _records(work: Path) -> dict:
    f = Path(work) / "records.json"
    return json.loads(f.read_text()) if f.is_file() else {}
