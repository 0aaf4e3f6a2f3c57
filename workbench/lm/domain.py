"""The domain LM: a small Llama-architecture causal LM trained here, from random weights, on the corpus's
training text only. It is the in-domain baseline a reranker must beat (it knows the templates and slots, and
nothing else), and small enough to train in minutes on two CPU cores.

The tokenizer is a byte-level BPE (Hugging Face ``tokenizers``) learned from the same text, so any text,
words it never saw included, can be scored. Training runs through Lightning (``devices``/``num_nodes`` scale
it); the export is an ordinary Hugging Face folder that :func:`workbench.lm.load_causal_lm` loads.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..files import replace_dir
from ..scale import finish_ranks, shard, shard_audit
from .load import CausalLM, load_causal_lm

MODELS = Path(__file__).resolve().parents[2] / "data" / "models"
SPECIALS = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}


@dataclass
class DomainLMConfig:
    vocab_size: int = 1024
    hidden_size: int = 192
    layers: int = 6
    heads: int = 6
    intermediate_size: int = 512
    max_tokens: int = 96           # longer than any corpus sentence in tokens (~40 at most)
    batch_size: int = 64
    lr: float = 3e-3
    warmup_steps: int = 100
    max_steps: int = 1500
    seed: int = 0
    threads: int = 2


def train_tokenizer(texts: list[str], vocab_size: int, out: str | os.PathLike):
    """A byte-level BPE over ``texts``, saved as a ``PreTrainedTokenizerFast`` with <s>, </s>, <pad>, <unk>."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, show_progress=False,
                            special_tokens=list(SPECIALS.values()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, **SPECIALS)
    tok.save_pretrained(str(out))
    return tok


def new_model(cfg: DomainLMConfig, tok):
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(cfg.seed)
    mc = LlamaConfig(vocab_size=len(tok), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
                     num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.heads,
                     max_position_embeddings=cfg.max_tokens, tie_word_embeddings=True,
                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return LlamaForCausalLM(mc)


def _batches(ids: list[list[int]], batch_size: int, pad: int, seed: int):
    """Endless shuffled batches of (input_ids, attention_mask, labels); padding is not a target."""
    g = torch.Generator().manual_seed(seed)
    while True:
        for b in torch.randperm(len(ids), generator=g).split(batch_size):
            seqs = [ids[int(i)] for i in b]
            L = max(map(len, seqs))
            x = torch.full((len(seqs), L), pad, dtype=torch.long)
            m = torch.zeros_like(x)
            for i, s in enumerate(seqs):
                x[i, :len(s)] = torch.tensor(s)
                m[i, :len(s)] = 1
            yield x, m, x.masked_fill(m == 0, -100)


class _Shuffled(torch.utils.data.IterableDataset):
    """The training texts as endless shuffled padded batches (a loader with ``batch_size=None`` passes them on)."""

    def __init__(self, ids, batch_size, pad, seed):
        super().__init__()
        self.args = (ids, batch_size, pad, seed)

    def __iter__(self):
        ids, *rest = self.args
        return _batches(shard(ids), *rest)          # each DDP rank its own texts


def warmup_cosine(params, lr: float, warmup_steps: int, max_steps: int, progress=None, weight_decay: float = 0.01,
                  betas=(0.9, 0.999)) -> dict:
    """Lightning's ``configure_optimizers`` answer: AdamW, linear warmup, then cosine to 5 % of the peak, per step.
    ``progress(step)``, if given, says how much of the budget is spent (0..1; e.g. wall-clock against a time
    budget) in place of the step count."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas)

    def schedule(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = min(1.0, progress(step) if progress else (step - warmup_steps) / max(1, max_steps - warmup_steps))
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, schedule),
                                               "interval": "step"}}


def lightning_module(model, cfg: DomainLMConfig):
    import lightning.pytorch as pl

    class CausalLMModule(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model

        def training_step(self, batch, _):
            x, m, y = batch
            loss = self.model(input_ids=x, attention_mask=m, labels=y).loss
            self.log("train_loss", loss, prog_bar=True, batch_size=x.shape[0])
            return loss

        def validation_step(self, batch, _):
            x, m, y = batch
            n = (y[:, 1:] != -100).sum()
            loss = self.model(input_ids=x, attention_mask=m, labels=y).loss
            self.log("val_loss", loss, batch_size=int(n), prog_bar=True, sync_dist=True)

        def configure_optimizers(self):
            return warmup_cosine(self.parameters(), cfg.lr, cfg.warmup_steps, cfg.max_steps)
    return CausalLMModule()


def _encode_all(tok, texts: list[str], max_tokens: int) -> list[list[int]]:
    out = []
    for t in texts:
        ids = [tok.bos_token_id] + tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        out.append(ids[:max_tokens])
    return out


def perplexity(lm: CausalLM, texts: list[str], batch_size: int = 64, context: str = "") -> float:
    """exp(mean negative log-probability per scored token, end symbol included) over ``texts``."""
    from .score import score_texts
    s = score_texts(lm, texts, batch_size=batch_size, context=context)
    return math.exp(-sum(x.total for x in s) / max(1, sum(x.n_tokens for x in s)))


def train_domain_lm(train_texts: list[str], dev_texts: list[str], out: str | os.PathLike,
                    cfg: DomainLMConfig | None = None, trainer_kwargs: dict | None = None) -> dict:
    """Train the tokenizer and the LM on ``train_texts``; validate on ``dev_texts``; export a Hugging Face folder
    to ``out`` (written beside it and renamed, so a failed run leaves the previous export). Returns the
    metadata written to ``out/training.json``."""
    import lightning.pytorch as pl
    cfg = cfg or DomainLMConfig()
    if not train_texts or not dev_texts:
        raise ValueError("the domain LM needs training and dev texts (got "
                         f"{len(train_texts)} and {len(dev_texts)})")
    out = Path(out)
    tmp = out.with_name(f".{out.name}.training-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    torch.set_num_threads(cfg.threads)
    t0 = time.time()
    try:
        tok = train_tokenizer(train_texts, cfg.vocab_size, tmp)
        model = new_model(cfg, tok)
        train_ids, dev_ids = _encode_all(tok, train_texts, cfg.max_tokens), _encode_all(tok, dev_texts, cfg.max_tokens)
        dev_batches = list(b for b, _ in zip(_batches(dev_ids, 256, tok.pad_token_id, 0),
                                             range(math.ceil(len(dev_ids) / 256))))
        kw = dict(max_steps=cfg.max_steps, accelerator="auto", devices=1, logger=False, enable_checkpointing=False,
                  val_check_interval=min(500, cfg.max_steps), check_val_every_n_epoch=None, num_sanity_val_steps=0,
                  enable_progress_bar=False, gradient_clip_val=1.0, limit_val_batches=len(dev_batches))
        kw.update(trainer_kwargs or {})
        audit = shard_audit()
        kw["callbacks"] = [*kw.get("callbacks", []), audit]
        trainer = pl.Trainer(**kw)
        module = lightning_module(model, cfg)
        loader = torch.utils.data.DataLoader
        trainer.fit(module, train_dataloaders=loader(_Shuffled(train_ids, cfg.batch_size, tok.pad_token_id, cfg.seed),
                                                     batch_size=None),
                    val_dataloaders=loader(dev_batches, batch_size=None))
        finish_ranks(trainer)                       # DDP: rank 0 goes on to export
        model = module.model.cpu().eval()
        model.save_pretrained(tmp)
        lm = CausalLM(model, tok, str(out))
        meta = {"config": asdict(cfg), "params": lm.n_params, "train_texts": len(train_texts),
                "distinct_train_texts": len(set(train_texts)), "steps": int(trainer.global_step),
                "train_seconds": round(time.time() - t0, 1), "dev_perplexity": round(perplexity(lm, dev_texts), 3),
                "trainer": {k: v for k, v in kw.items() if k in ("devices", "num_nodes", "strategy", "accelerator")},
                "ranks": audit.summary}
        (tmp / "training.json").write_text(json.dumps(meta, indent=1))
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def corpus_texts(corpus, split: str) -> list[str]:
    """The spoken text of every utterance of a corpus split (what a recogniser should output)."""
    from ..data import open_dataset
    return [e["text"] for e in open_dataset(corpus, split).entries]


def train_from_corpus(corpus_size: str = "default", out: str | os.PathLike | None = None,
                      cfg: DomainLMConfig | None = None, trainer_kwargs: dict | None = None) -> dict:
    """``python -m workbench train-lm``: the domain LM on the corpus's train split, validated on dev."""
    from ..data import ensure_corpus
    corpus = ensure_corpus(corpus_size)
    out = Path(out or MODELS / "lm_domain")
    meta = train_domain_lm(corpus_texts(corpus, "train"), corpus_texts(corpus, "dev"), out, cfg, trainer_kwargs)
    lm = load_causal_lm(out, device="cpu")
    meta["perplexity"] = {s: round(perplexity(lm, corpus_texts(corpus, s)), 3)
                          for s in ("dev", "test", "test_unseen_text")}
    meta["corpus"] = str(corpus)
    (out / "training.json").write_text(json.dumps(meta, indent=1))
    return meta


def load_domain_lm(path: str | os.PathLike | None = None, device: str | None = None) -> CausalLM:
    """The shipped domain LM (``data/models/lm_domain``) or another export of :func:`train_domain_lm`."""
    return load_causal_lm(Path(path or MODELS / "lm_domain"), device=device)
