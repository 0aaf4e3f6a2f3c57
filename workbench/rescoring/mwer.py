"""An LLM fine-tuned to rerank: LoRA on a causal LM, trained with the minimum-word-error-rate (MWER) loss.

The design of RescoreBERT (Xu et al., ICASSP 2022) on a causal LM: every hypothesis of a list gets
``s = acoustic + w_lm * LM log-probability + w_len * words``; the list's softmax over ``s`` is a distribution
over hypotheses, and the loss is its expected word errors (minus the list's mean, the usual variance
reduction). Minimising it teaches the LM which of the recogniser's confusions to prefer, not merely what text
is likely. Only the LoRA matrices (``peft``, on the top ``top_layers`` blocks, so the backward pass stops
there) and the two weights train; the base model stays frozen. Lists whose hypotheses all make the same
number of errors carry no gradient and are left out.

Training runs through Lightning (``devices``/``num_nodes``/``accelerator`` from ``trainer_kwargs`` scale it);
the adapter with the lowest dev WER (checked every ``val_every`` steps, the zero-shot start included) is kept.
The export is a ``peft`` adapter folder plus ``reranker.json`` (base model, weights, context, training record);
``load_mwer_reranker`` returns a ``LogLinearReranker`` over the merged model, so the fine-tuned reranker and the
zero-shot ones are the same object with different LMs.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..asr.scoring import normalize
from ..files import replace_dir
from ..lm import CausalLM, HeadLM, encode, head_scores, load_causal_lm
from ..lm.score import text_logprob_sums
from .loglinear import LogLinearReranker, NBestError, _features, _ref_words, lm_scores, nbest_errors, rerank_errors
from ..scale import finish_ranks, shard

MODELS = Path(__file__).resolve().parents[2] / "data" / "models"
HEAD_FILE = "score_head.safetensors"


@dataclass
class MWERConfig:
    # What the fine-tuned LLM contributes to a hypothesis's score. "lm" (default): its log-probability sum,
    # s = acoustic + w_lm * LM + w_len * words. "head": a scalar head on the end symbol's hidden state
    # (``HeadLM``), zero at the start, so training begins exactly at the word-bonus system and moves only where
    # the lists teach it; s = acoustic + w_len * words + head. Neither beat the word bonus alone (stop 18).
    scorer: str = "lm"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "v_proj", "o_proj")
    top_layers: int = 8            # LoRA on the top blocks only: the backward pass stops below them
    lr: float = 5e-4               # the LoRA matrices
    weight_lr: float = 2e-2        # the two score weights (scalars move slowly at the LoRA rate)
    lists_per_step: int = 4
    max_steps: int = 400
    val_every: int = 100
    max_hyps: int = 8
    min_lm_weight: float = 0.1     # a zero LM weight at the start would give the LM no gradient
    # Which score weights train. The word bonus stays at its dev-tuned value by default: the training lists are
    # of utterances the recogniser was trained on, and learning it there drifted w_len from 2.0 to 3.8 in 400
    # steps while dev WER rose (0.412 -> 0.420 on 200 dev lists; the first run, stop 15).
    train_weights: tuple[str, ...] = ("w_lm",)
    seed: int = 0
    threads: int = 2
    context: str = ""
    trainer_kwargs: dict = field(default_factory=dict)


def training_lists(refs: list[str], nbests, max_hyps: int = 8) -> list[dict]:
    """The informative lists (at least two hypotheses, not all with the same errors) as tensors-to-be."""
    errs = nbest_errors(refs, nbests)
    out = []
    for r, nb, e in zip(refs, nbests, errs):
        nb, e = nb[:max_hyps], e[:max_hyps]
        if len(nb) < 2 or float(np.std(e)) == 0.0:
            continue
        am, words = _features(nb)
        out.append({"texts": [normalize(h.text) for h in nb], "am": am.astype(np.float32),
                    "words": words.astype(np.float32), "errors": e.astype(np.float32)})
    return out


def _fits(lm: CausalLM, texts: list[str], context: str) -> bool:
    from ..lm import LMInputError
    try:
        encode(lm, texts, True, context)
        return True
    except LMInputError:
        return False


class _Lists(torch.utils.data.IterableDataset):
    """Endless shuffled batches of ``k`` lists (one epoch after another, a new order each)."""

    def __init__(self, lists: list[dict], k: int, seed: int):
        self.lists, self.k, self.seed = lists, k, seed

    def __iter__(self):
        rng, epoch, lists = np.random.default_rng(self.seed), 0, shard(self.lists)   # each DDP rank its own lists
        while True:
            order = rng.permutation(len(lists))
            for b in range(0, len(order) - self.k + 1, self.k):
                yield [lists[i] for i in order[b:b + self.k]]
            epoch += 1


def mwer_loss(s: torch.Tensor, errors: torch.Tensor) -> torch.Tensor:
    """Expected errors under softmax(s) minus the list's mean errors (RescoreBERT's MWER)."""
    p = torch.softmax(s, dim=-1)
    return (p * (errors - errors.mean())).sum()


def _view(model, head, lm: CausalLM) -> CausalLM:
    return HeadLM(model, lm.tokenizer, lm.name, head) if head is not None else CausalLM(model, lm.tokenizer, lm.name)


def _module(lm: CausalLM, w_lm: float, w_len: float, cfg: MWERConfig):
    import lightning.pytorch as pl

    class MWERModule(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = lm.model
            self.head = lm.head if isinstance(lm, HeadLM) else None
            self.w_lm = torch.nn.Parameter(torch.tensor(float(w_lm)), requires_grad="w_lm" in cfg.train_weights)
            self.w_len = torch.nn.Parameter(torch.tensor(float(w_len)), requires_grad="w_len" in cfg.train_weights)

        def list_scores(self, lists: list[dict]) -> list[torch.Tensor]:
            view = _view(self.model, self.head, lm)
            ids, first = encode(view, [t for L in lists for t in L["texts"]], True, cfg.context)
            sums = head_scores(view, ids) if self.head is not None else text_logprob_sums(view, ids, first)
            out, i = [], 0
            for L in lists:
                k = len(L["texts"])
                am, words = (torch.as_tensor(L[n], device=sums.device) for n in ("am", "words"))
                out.append(am + self.w_lm * sums[i:i + k] + self.w_len * words)
                i += k
            return out

        def training_step(self, lists, _):
            s = self.list_scores(lists)
            loss = torch.stack([mwer_loss(x, torch.as_tensor(L["errors"], device=x.device))
                                for x, L in zip(s, lists)]).mean()
            self.log("mwer", loss, prog_bar=True, batch_size=len(lists))
            return loss

        def configure_optimizers(self):
            lora = [p for n, p in self.named_parameters() if p.requires_grad and not n.startswith("w_")]
            weights = [p for p in (self.w_lm, self.w_len) if p.requires_grad]
            return torch.optim.AdamW([{"params": lora, "lr": cfg.lr}]
                                     + ([{"params": weights, "lr": cfg.weight_lr}] if weights else []), weight_decay=0.0)

    return MWERModule()


def _with_lora(lm: CausalLM, cfg: MWERConfig) -> CausalLM:
    from peft import LoraConfig, get_peft_model
    n_layers = int(lm.model.config.num_hidden_layers)
    top = list(range(max(0, n_layers - cfg.top_layers), n_layers))
    pc = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                    target_modules=list(cfg.target_modules), layers_to_transform=top, bias="none",
                    task_type="CAUSAL_LM")
    torch.manual_seed(cfg.seed)
    model = get_peft_model(copy.deepcopy(lm.model), pc)                 # the caller's LM untouched
    if cfg.scorer == "head":
        head = torch.nn.Linear(int(lm.model.config.hidden_size), 1, bias=False)
        torch.nn.init.zeros_(head.weight)                                # the start: the word bonus alone
        return HeadLM(model, lm.tokenizer, lm.name, head.to(lm.device))
    if cfg.scorer != "lm":
        raise ValueError(f"scorer must be 'head' or 'lm', not {cfg.scorer!r}")
    return CausalLM(model, lm.tokenizer, lm.name)


class _KeepBest:
    """Lightning callback: every ``val_every`` steps, the dev WER of the current adapter; the best is kept."""

    def __new__(cls, *a, **k):
        import lightning.pytorch as pl

        class KeepBest(pl.Callback):
            def __init__(self, dev, every, context, log):
                self.dev, self.every, self.context, self.log_fn = dev, every, context, log
                self.best, self.history, self.state = None, [], None

            def evaluate(self, module, step):
                module.eval()
                view = _view(module.model, module.head, self.dev["lm"])
                s = lm_scores(view, self.dev["nbests"], self.context, strict=False)
                w_lm, w_len = module.w_lm.item(), module.w_len.item()
                e = rerank_errors(self.dev["refs"], self.dev["nbests"], s, w_lm, w_len,
                                  self.dev["errs"], self.dev["words"], self.dev["feats"])
                wer = float(e.sum() / max(1.0, self.dev["words"].sum()))
                self.history.append({"step": int(step), "dev_wer": wer, "w_lm": w_lm, "w_len": w_len})
                if self.log_fn:
                    self.log_fn(f"step {step}: dev WER {wer:.4f} (w_lm {w_lm:.3f}, w_len {w_len:.3f})")
                if self.best is None or wer < self.best:
                    self.best = wer
                    self.state = copy.deepcopy({k: v.detach().cpu() for k, v in module.named_parameters()
                                                if v.requires_grad or k in ("w_lm", "w_len")})
                module.train()

            def on_train_start(self, trainer, module):
                self.evaluate(module, 0)

            def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
                step = trainer.global_step
                if step % self.every == 0 or step >= trainer.max_steps:
                    self.evaluate(module, step)

        return KeepBest(*a, **k)


def train_mwer(lm: CausalLM, train_refs, train_nbests, dev_refs, dev_nbests, out: str | os.PathLike,
               cfg: MWERConfig | None = None, init: dict | None = None, log=print, extra: dict | None = None) -> dict:
    """Fine-tune ``lm`` (LoRA) to rerank with MWER on the training lists; keep the adapter with the best dev WER;
    export it to ``out`` (written beside and renamed). ``init``: {"lambda", "beta"} to start the weights from
    (default: tuned zero-shot on dev); ``extra``: more fields for the record. Returns the training record also
    written to ``reranker.json``."""
    import lightning.pytorch as pl
    from .loglinear import tune
    cfg = cfg or MWERConfig()
    torch.set_num_threads(cfg.threads)
    lists = [L for L in training_lists(train_refs, train_nbests, cfg.max_hyps) if _fits(lm, L["texts"], cfg.context)]
    if not lists:
        raise NBestError("no training list has two hypotheses with different errors: nothing to learn from")
    if not dev_nbests or not any(len(nb) for nb in dev_nbests):
        raise NBestError("the dev lists are empty: the adapter could not be chosen")
    t0 = time.time()
    if cfg.scorer == "head":       # the head's scale is learnt; its weight in the sum stays 1
        if init is None:
            init = tune(dev_refs, dev_nbests, [np.zeros(len(nb)) for nb in dev_nbests], lambdas=(0.0,))
        w_lm, w_len = 1.0, float(init["beta"])
        cfg = replace(cfg, train_weights=tuple(w for w in cfg.train_weights if w != "w_lm"))
    else:
        if init is None:
            init = tune(dev_refs, dev_nbests, lm_scores(lm, dev_nbests, cfg.context, strict=False))
        w_lm, w_len = max(float(init["lambda"]), cfg.min_lm_weight), float(init["beta"])
    peft_lm = _with_lora(lm, cfg)
    module = _module(peft_lm, w_lm, w_len, cfg)
    dev = {"lm": peft_lm, "refs": dev_refs, "nbests": dev_nbests, "errs": nbest_errors(dev_refs, dev_nbests),
           "words": _ref_words(dev_refs), "feats": [_features(nb) for nb in dev_nbests]}
    keep = _KeepBest(dev, cfg.val_every, cfg.context, log)
    kw = dict(max_steps=cfg.max_steps, accelerator="auto", devices=1, logger=False, enable_checkpointing=False,
              enable_progress_bar=False, limit_val_batches=0, num_sanity_val_steps=0, gradient_clip_val=1.0,
              callbacks=[keep])
    kw.update(cfg.trainer_kwargs or {})
    trainer = pl.Trainer(**kw)
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(_Lists(lists, cfg.lists_per_step, cfg.seed),
                                                                       batch_size=None))
    finish_ranks(trainer)                           # DDP: rank 0 goes on to export
    # the best adapter and weights back into the module
    with torch.no_grad():
        params = dict(module.named_parameters())
        for k, v in keep.state.items():
            params[k].copy_(v.to(params[k].device))
    best = min(keep.history, key=lambda h: h["dev_wer"])
    record = {"base": lm.name, "scorer": cfg.scorer, "context": cfg.context, "w_lm": module.w_lm.item(), "w_len": module.w_len.item(),
              "init": {"lambda": float(init["lambda"]), "beta": float(init["beta"])},
              "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()
                         if k != "trainer_kwargs"},
              "train_lists": len(lists), "train_lists_total": len(train_nbests), "steps": int(trainer.global_step),
              "best_step": best["step"], "dev_wer": best["dev_wer"], "history": keep.history,
              "train_seconds": round(time.time() - t0, 1),
              "trainable_params": int(sum(v.numel() for v in keep.state.values())), **(extra or {})}
    out = Path(out)
    tmp = out.with_name(f".{out.name}.training-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        module.model.cpu().save_pretrained(tmp)
        (tmp / "README.md").unlink(missing_ok=True)         # peft's empty model-card template
        ac = json.loads((tmp / "adapter_config.json").read_text())
        ac["base_model_name_or_path"] = lm.name              # the name it loads by, not this machine's cache path
        (tmp / "adapter_config.json").write_text(json.dumps(ac, indent=2))
        if module.head is not None:
            from safetensors.torch import save_file
            save_file({"weight": module.head.weight.detach().cpu().contiguous()}, str(tmp / HEAD_FILE))
        (tmp / "reranker.json").write_text(json.dumps(record, indent=1))
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return record


def train_from_corpus(asr_model=None, corpus_size: str = "default", out: str | os.PathLike | None = None,
                      base: str | os.PathLike | None = None, n_train: int = 3500, n_val: int = 200, beam: int = 8,
                      context=(70, 13), cfg: MWERConfig | None = None, train_split: str = "dev", log=print) -> dict:
    """``python -m workbench train-reranker``: MWER fine-tuning of ``base`` (default SmolLM2-135M-Instruct,
    offline) on n-best lists decoded by the shipped recogniser (cached), the adapter with the lowest WER on the
    first ``n_val`` dev lists exported to ``data/models/reranker_mwer``. Nothing of test is ever seen.

    Where the training lists come from (``train_split``):
    ``"dev"`` (default): the dev lists after the first ``n_val`` (a few hundred: what the shipped adapter learnt from).
    ``"fresh"``: ``n_train`` fresh sentences spoken by the dev speakers (``corpus_with_more``: the dev
    split extended past its own utterances), so the lists hold the errors the recogniser makes on speech it was
    not trained on, in the thousands, as production rescorers are trained on held-out (or jack-knifed) output.
    ``"train"``: the first ``n_train`` training utterances, measured not to transfer: the recogniser was trained
    on that audio, so its lists there hold other errors (stop 15: dev WER rose from 0.417 to 0.420 and 0.427)."""
    from ..asr.recipe import MODELS as ASR_MODELS
    from ..data import corpus_with_more, ensure_corpus
    from ..lm import SMOLLM2
    from .nbest import nbest_set
    corpus = ensure_corpus(corpus_size)
    asr_model = Path(asr_model or ASR_MODELS / "asr_small" / "model.nemo")
    dev_all = nbest_set(asr_model, corpus, "dev", None, beam, context, log=None)
    if n_val > len(dev_all) or (train_split == "dev" and n_val >= len(dev_all)):
        raise ValueError(f"n_val={n_val} leaves no dev list to {'train on' if train_split == 'dev' else 'spare'}")
    dev = dev_all.subset(range(n_val))
    source = corpus
    if train_split == "dev":
        tr = dev_all.subset(range(n_val, len(dev_all)))
    elif train_split == "train":
        tr = nbest_set(asr_model, corpus, "train", n_train, beam, context, log=None)
    elif train_split == "fresh":
        source = corpus_with_more("dev", len(dev_all) + n_train, corpus_size, root=corpus.parent)
        more = nbest_set(asr_model, source, "dev", None, beam, context, log=log)
        if more.refs[:len(dev_all)] != dev_all.refs:
            raise ValueError(f"{source}: its first dev utterances are not {corpus}'s dev split")
        tr = more.subset(range(len(dev_all), len(more)))
    else:
        raise ValueError(f"train_split must be 'fresh', 'dev' or 'train', not {train_split!r}")
    lm = load_causal_lm(base or SMOLLM2, device=None)
    from ..results import repo_path
    return train_mwer(lm, tr.refs, tr.nbests, dev.refs, dev.nbests, out or MODELS / "reranker_mwer", cfg, log=log,
                      extra={"asr_model": repo_path(asr_model), "corpus": repo_path(corpus),
                             "train_corpus": repo_path(source), "train_split": train_split,
                             "n_train": len(tr), "n_val": n_val, "beam": beam, "att_context": list(context)})


class RerankerError(ValueError):
    """A reranker folder that is missing or not one ``train_mwer`` wrote."""


def load_mwer_reranker(path: str | os.PathLike | None = None, base: CausalLM | None = None,
                       device: str | None = None, dtype: torch.dtype | None = None,
                       top_k: int | None = None) -> LogLinearReranker:
    """The fine-tuned reranker at ``path`` (default ``data/models/reranker_mwer``): the base LM (loaded by name
    or path from ``reranker.json``, or ``base``), the adapter merged into it, the trained weights.
    ``dtype`` casts the merged model (``torch.bfloat16``: half the weight traffic, on CPUs with AVX512-BF16 or
    AMX a faster matmul); ``top_k`` prunes what the LM reads (``LogLinearReranker.top_k``)."""
    from peft import PeftModel
    path = Path(path or MODELS / "reranker_mwer")
    meta_file = path / "reranker.json"
    if not meta_file.is_file():
        raise RerankerError(f"{path} is not a fine-tuned reranker (no reranker.json)")
    try:
        meta = json.loads(meta_file.read_text())
        base_name, w_lm, w_len = meta["base"], float(meta["w_lm"]), float(meta["w_len"])
    except (ValueError, KeyError) as e:
        raise RerankerError(f"{meta_file} is unreadable: {type(e).__name__}: {e}") from None
    lm = base if base is not None else load_causal_lm(base_name, device=device)
    model = copy.deepcopy(lm.model) if base is not None else lm.model       # merging writes into the weights
    try:
        merged = PeftModel.from_pretrained(model, str(path)).merge_and_unload().eval()
    except Exception as e:
        raise RerankerError(f"{path}: the adapter does not load onto {base_name}: {type(e).__name__}: {e}") from None
    name = f"{base_name}+{path.name}"
    if meta.get("scorer", "lm") == "head":
        from safetensors.torch import load_file
        try:
            w = load_file(str(path / HEAD_FILE))["weight"]
        except Exception as e:      # noqa: BLE001 - missing or corrupt file
            raise RerankerError(f"{path}: the score head does not load: {type(e).__name__}: {e}") from None
        if tuple(w.shape) != (1, int(merged.config.hidden_size)):
            raise RerankerError(f"{path}: the score head has shape {tuple(w.shape)}, the model's hidden size is "
                                f"{merged.config.hidden_size}")
        head = torch.nn.Linear(w.shape[1], 1, bias=False)
        with torch.no_grad():
            head.weight.copy_(w)
        head = head.to(next(merged.parameters()).device).eval()
        if dtype is not None:
            merged, head = merged.to(dtype), head.to(dtype)
        scorer: CausalLM = HeadLM(merged, lm.tokenizer, name, head)
    else:
        scorer = CausalLM(merged.to(dtype) if dtype is not None else merged, lm.tokenizer, name)
    return LogLinearReranker(scorer, w_lm, w_len, meta.get("context", ""), top_k)
