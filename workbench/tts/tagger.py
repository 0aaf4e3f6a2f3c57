"""The stage-direction tagger: an LM fine-tuned to turn a plain response into the same words with stage directions,
``Sorry, I didn't catch that.`` -> ``[apologetic] Sorry, I didn't catch that.``

Training pairs come from the response templates (responses.py) with their gold deliveries; held-out templates
are the test. The LM is the domain LM of ``workbench.lm`` (``--lm smollm2`` on a GPU; same code), fine-tuned as a
causal LM on ``plain =>  tagged</s>`` with the loss on the tagged half only. Decoding is greedy, and its output is
*projected* back onto the input: its words are aligned to the input's (difflib), the known tags it wrote keep
their aligned places, and the words are the input's own, so the tagger can add delivery but never change what
is said.
Scored by tag F1 over (tag, word position) pairs, and by tag name alone, with bootstrap intervals; a keyword rule
(questions curious, apologies apologetic, exclamations excited) is the floor to beat.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .responses import sample, untag
from .styles import DELIVERIES, EVENTS, StageDirectionError, _check_text
from ..scale import finish_ranks, shard

MODELS = Path(__file__).resolve().parents[2] / "data" / "models"
SEP = " =>"


@dataclass
class TaggerConfig:
    lm: str = "domain"
    n_train: int = 6000
    n_dev: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 50
    max_steps: int = 1200
    max_minutes: float = 10.0
    threads: int = 2
    seed: int = 0


def pairs(n: int, held_out: bool, seed: int) -> list[tuple[str, str]]:
    """``n`` (plain, gold tagged) responses, seeded."""
    rng = np.random.default_rng([seed, 31, int(held_out)])
    return [sample(rng, held_out=held_out)[1:] for _ in range(n)]


def tag_positions(tagged: str) -> list[tuple[str, int]]:
    """Each known tag of a tagged text with the number of words before it."""
    out, k = [], 0
    for m in re.finditer(r"\[([^\[\]]*)\]|[^\s\[\]]+", tagged):
        if m.group(1) is not None:
            name = m.group(1).strip().lower()
            if name in DELIVERIES or name in EVENTS:
                out.append((name, k))
        else:
            k += 1
    return out


def _position_map(gen: list[str], words: list[str]) -> list[int]:
    """For each position between the generated words (0..len(gen)), the matching position between the input's
    words: the two word lists aligned by ``difflib`` (case and punctuation ignored), so a tag keeps its place
    even where the LM dropped, added or changed a word."""
    from difflib import SequenceMatcher
    norm = (lambda ws: [re.sub(r"[^\w']", "", w.lower()) for w in ws])
    pos = [0] * (len(gen) + 1)
    for op, i1, i2, j1, j2 in SequenceMatcher(None, norm(gen), norm(words), autojunk=False).get_opcodes():
        for i in range(i1, i2 + 1):
            pos[i] = j1 + (i - i1 if op == "equal" else round((i - i1) * (j2 - j1) / max(1, i2 - i1)))
    return pos


def project(plain: str, generated: str) -> str:
    """The input's words with the known tags of ``generated`` inserted where it put them, positions carried
    over by aligning the generated words to the input's (unknown tags dropped)."""
    words = plain.split()
    gen = [w for w in re.findall(r"\[[^\[\]]*\]|[^\s\[\]]+", generated) if not w.startswith("[")]
    where = _position_map(gen, words)
    at: dict[int, list[str]] = {}
    for name, k in tag_positions(generated):
        at.setdefault(min(where[min(k, len(gen))], len(words)), []).append(f"[{name}]")
    out = []
    for i in range(len(words) + 1):
        out += at.get(i, [])
        if i < len(words):
            out.append(words[i])
    return " ".join(out)


def rule_tagger(plain: str) -> str:
    """The floor: apologies apologetic, questions curious, exclamations excited, per sentence."""
    out = []
    for sent in re.findall(r"[^.!?]+[.!?]*", plain):
        s = sent.strip()
        if not s:
            continue
        tag = ("apologetic" if re.match(r"(?i)sorry\b", s) else "curious" if s.endswith("?")
               else "excited" if s.endswith("!") else None)
        out.append(f"[{tag}] {s}" if tag else s)
    return " ".join(out)


def tag_f1(golds: list[str], preds: list[str]) -> dict:
    """Micro F1 over (tag, position) pairs and over tag names alone, with bootstrap intervals over responses."""
    from ..stats import paired_ci
    out = {}
    for key, fn in (("f1", tag_positions), ("f1_names", lambda t: [n for n, _ in tag_positions(t)])):
        tp, fp, fn_ = [], [], []
        for g, p in zip(golds, preds):
            cg, cp = Counter(fn(g)), Counter(fn(p))
            hit = sum((cg & cp).values())
            tp.append(hit)
            fp.append(sum(cp.values()) - hit)
            fn_.append(sum(cg.values()) - hit)
        f1 = (lambda a, b, c: float(2 * a.sum() / max(1.0, 2 * a.sum() + b.sum() + c.sum())))
        out[key] = paired_ci((tp, fp, fn_), f1)
    return out


class Tagger:
    """A fine-tuned causal LM (``workbench.lm.CausalLM``) that writes stage directions."""

    def __init__(self, lm):
        self.lm = lm

    def prompt_ids(self, plain: str) -> list[int]:
        tok = self.lm.tokenizer
        return [tok.bos_token_id] + tok(plain + SEP, add_special_tokens=False)["input_ids"]

    @torch.inference_mode()
    def tag_many(self, plains: list[str], batch_size: int = 32) -> list[str]:
        """Tagged versions of plain responses (typed errors for empty, over-long or other-script text)."""
        cleaned = [untag(_check_text(p)) for p in plains]
        tok, model = self.lm.tokenizer, self.lm.model
        limit = int(getattr(model.config, "max_position_embeddings", 512))
        out = []
        for i in range(0, len(cleaned), batch_size):
            chunk = cleaned[i:i + batch_size]
            ids = [self.prompt_ids(p) for p in chunk]
            L = max(map(len, ids))
            if L >= limit:
                raise StageDirectionError(f"response too long for the tagger's LM ({L} tokens; at most {limit - 1})")
            pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
            x = torch.full((len(ids), L), pad, dtype=torch.long)
            m = torch.zeros_like(x)
            for j, s in enumerate(ids):                      # left padding: every prompt ends at the same place
                x[j, L - len(s):] = torch.tensor(s)
                m[j, L - len(s):] = 1
            gen = model.generate(input_ids=x.to(self.lm.device), attention_mask=m.to(self.lm.device),
                                 max_new_tokens=min(limit - L, 2 * L + 8), do_sample=False,
                                 eos_token_id=tok.eos_token_id, pad_token_id=pad)
            for p, g in zip(chunk, gen[:, L:]):
                out.append(project(p, tok.decode(g, skip_special_tokens=True)))
        return out

    def tag(self, plain: str) -> str:
        return self.tag_many([plain])[0]


def _encode_pair(tok, plain: str, tagged: str, limit: int) -> tuple[list[int], int]:
    p = [tok.bos_token_id] + tok(plain + SEP, add_special_tokens=False)["input_ids"]
    t = tok(" " + tagged, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    return (p + t)[:limit], len(p)


class _Pairs(torch.utils.data.IterableDataset):
    """Endless shuffled padded batches (input_ids, attention_mask, labels); only the tagged half is a target."""

    def __init__(self, enc, batch_size, pad, seed):
        super().__init__()
        self.enc, self.batch_size, self.pad, self.seed = enc, batch_size, pad, seed

    def __iter__(self):
        rng, enc = np.random.default_rng(self.seed), shard(self.enc)         # each DDP rank its own pairs
        while True:
            yield batch_of([enc[i] for i in rng.choice(len(enc), self.batch_size)], self.pad)


def batch_of(enc, pad):
    L = max(len(s) for s, _ in enc)
    x = torch.full((len(enc), L), pad, dtype=torch.long)
    m = torch.zeros_like(x)
    y = torch.full_like(x, -100)
    for i, (s, n_prompt) in enumerate(enc):
        x[i, :len(s)] = torch.tensor(s)
        m[i, :len(s)] = 1
        y[i, n_prompt:len(s)] = torch.tensor(s[n_prompt:])
    return x, m, y


def train_tagger(out: str | os.PathLike | None = None, cfg: TaggerConfig | None = None, n_test: int = 300,
                 trainer_kwargs: dict | None = None, log=print, results_dir=None,
                 command: str = "python -m workbench train-tagger") -> dict:
    """Fine-tune the LM into a tagger, score it on held-out templates, save a Hugging Face folder to ``out``
    (default ``data/models/tagger``; written beside it, then renamed). With ``results_dir`` the held-out score
    also goes to ``bench_tagger.json`` there (the README's figure)."""
    import lightning.pytorch as pl
    from ..files import replace_dir
    from ..lm.domain import lightning_module
    from ..lm.load import CausalLM, load_causal_lm
    from .ltts import _lm_folder
    cfg = cfg or TaggerConfig()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out = Path(out or MODELS / "tagger")
    t0 = time.time()
    lm = load_causal_lm(_lm_folder(cfg.lm), device="cpu")
    model, tok = lm.model.float().train(), lm.tokenizer
    limit = int(getattr(model.config, "max_position_embeddings", 512))
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    train = [_encode_pair(tok, p, t, limit) for p, t in pairs(cfg.n_train, False, cfg.seed)]
    dev = [_encode_pair(tok, p, t, limit) for p, t in pairs(cfg.n_dev, False, cfg.seed + 1)]
    dev_batches = [batch_of(dev[i:i + 64], pad) for i in range(0, len(dev), 64)]
    tmp = out.with_name(f".{out.name}.training-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        kw = dict(max_steps=cfg.max_steps, max_time={"minutes": cfg.max_minutes}, accelerator="auto", devices=1,
                  logger=False, enable_checkpointing=False, val_check_interval=min(200, cfg.max_steps),
                  check_val_every_n_epoch=None, num_sanity_val_steps=0, enable_progress_bar=False,
                  gradient_clip_val=1.0, limit_val_batches=len(dev_batches))
        kw.update(trainer_kwargs or {})
        trainer = pl.Trainer(**kw)
        module = lightning_module(model, cfg)
        loader = torch.utils.data.DataLoader
        trainer.fit(module, train_dataloaders=loader(_Pairs(train, cfg.batch_size, pad, cfg.seed), batch_size=None),
                    val_dataloaders=loader(dev_batches, batch_size=None))
        finish_ranks(trainer)                       # DDP: rank 0 goes on to export
        model = module.model.cpu().eval()
        t_train = time.time() - t0
        tagger = Tagger(CausalLM(model, tok, str(out)))
        test = pairs(n_test, True, cfg.seed + 2)
        golds = [t for _, t in test]
        t1 = time.time()
        preds = tagger.tag_many([p for p, _ in test])
        ms = 1000 * (time.time() - t1) / len(test)
        meta = {"config": asdict(cfg), "lm": _lm_folder(cfg.lm), "steps": int(trainer.global_step),
                "train_seconds": round(t_train, 1), "train_pairs": len(train),
                "test": {"n": len(test), "templates": "held out", "tagger": tag_f1(golds, preds),
                         "rule": tag_f1(golds, [rule_tagger(p) for p, _ in test]), "ms_per_response": round(ms, 1),
                         "examples": [{"plain": p, "gold": g, "tagged": q} for (p, g), q in zip(test[:8], preds[:8])]}}
        model.save_pretrained(tmp)
        tok.save_pretrained(str(tmp))
        (tmp / "tagger.json").write_text(json.dumps(meta, indent=1))
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if results_dir is not None:
        from ..results import save_bench
        save_bench(Path("reports") / "bench" / time.strftime("%Y-%m-%d"), "bench_tagger",
                   {"command": command, "model": str(out / "model.safetensors"), **meta}, results_dir=results_dir)
    f = meta["test"]["tagger"]["f1"]
    log(f"tagger: {meta['steps']} steps in {t_train:.0f} s; held-out tag F1 {f['value']:.3f} {f['ci95']} "
        f"(rule {meta['test']['rule']['f1']['value']:.3f}) -> {out}")
    return meta


def load_tagger(folder: str | os.PathLike | None = None, device: str | None = None) -> Tagger:
    """A saved tagger (``train_tagger``); a missing folder is a typed error naming the command that makes it."""
    from ..hub import ModelNotAvailableError
    from ..lm.load import load_causal_lm
    folder = Path(folder or MODELS / "tagger")
    if not (folder / "tagger.json").is_file():
        raise ModelNotAvailableError(f"no tagger at {folder}: train one with `python -m workbench train-tagger`")
    t = Tagger(load_causal_lm(folder, device=device))
    t.meta = json.loads((folder / "tagger.json").read_text())
    return t


__all__ = ["Tagger", "TaggerConfig", "load_tagger", "project", "rule_tagger", "tag_f1", "tag_positions",
           "train_tagger"]
