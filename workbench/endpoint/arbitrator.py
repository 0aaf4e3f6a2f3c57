"""The two-pass end-pointer's arbitrator (Raju et al., ASRU 2023): a small model that reads the recent
encoder output of the streaming recogniser and an encoding of the partial transcript, and says whether the
speaker has finished. A pause after "set a timer for" sounds like any pause; the transcript says it is not
the end. A pause after "... for ten minutes" is.

Trained on the recogniser's own streaming outputs over the training split (what it will see deployed):
positives just after true ends of speech, negatives inside mid-sentence pauses and after the ends of
truncated prefixes, plus a few in-speech steps. ``python -m workbench train-arbitrator`` ships it to
``data/models/arbitrator/`` with its metrics.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .signals import Signals

K_FRAMES = 8          # encoder frames the arbitrator sees (8 x 80 ms = 640 ms)
LAST_TOKENS = 4


class Arbitrator(nn.Module):
    def __init__(self, d_enc: int, vocab: int, d: int = 64, k_frames: int = K_FRAMES, last_tokens: int = LAST_TOKENS):
        super().__init__()
        self.config = {"d_enc": d_enc, "vocab": vocab, "d": d, "k_frames": k_frames, "last_tokens": last_tokens}
        self.k, self.n_last, self.pad = k_frames, last_tokens, vocab
        self.enc_in = nn.Linear(d_enc, d)
        self.gru = nn.GRU(d, d, batch_first=True)
        self.emb = nn.Embedding(vocab + 1, d, padding_idx=vocab)
        self.head = nn.Sequential(nn.Linear(d * (2 + last_tokens), d), nn.ReLU(), nn.Linear(d, 1))

    def forward(self, frames: torch.Tensor, last: torch.Tensor, bag: torch.Tensor) -> torch.Tensor:
        """frames (B, K, d_enc); last (B, last_tokens) ids (pad = vocab); bag (B, vocab+1) token counts.
        Returns logits (B,)."""
        _, h = self.gru(torch.relu(self.enc_in(frames)))
        e_last = self.emb(last).flatten(1)
        counts = bag[:, :-1]
        e_bag = counts @ self.emb.weight[:-1] / counts.sum(1, keepdim=True).clamp_min(1.0)
        return self.head(torch.cat([h[-1], e_last, e_bag], dim=1)).squeeze(1)


def step_features(s: Signals, steps, k: int, n_last: int, vocab: int):
    """Inputs for the given recogniser steps of one utterance."""
    enc = s.encoder.astype(np.float32)
    frames, last, bag = [], [], []
    for j in steps:
        n = int(s.step_frames[j])
        f = enc[max(0, n - k):n]
        frames.append(np.concatenate([np.zeros((k - len(f), enc.shape[1]), np.float32), f]))
        toks = [t for t in s.tokens[j] if t < vocab]
        tail = toks[-n_last:]
        last.append([vocab] * (n_last - len(tail)) + tail)
        b = np.zeros(vocab + 1, np.float32)
        np.add.at(b, toks, 1.0)
        bag.append(b)
    return (torch.from_numpy(np.stack(frames)), torch.tensor(last, dtype=torch.long),
            torch.from_numpy(np.stack(bag)))


def label_steps(s: Signals, after=(0.1, 0.8), rng=None, in_speech: int = 2) -> list[tuple[int, int, str]]:
    """(step, label, kind): 1 just after a true end of speech; 0 inside mid-sentence pauses, just after a
    truncated prefix's end, and a few steps inside speech."""
    rng = rng or np.random.default_rng(0)
    t = s.step_time
    out = []
    window = (t >= s.true_end + after[0]) & (t <= s.true_end + after[1])
    for j in np.flatnonzero(window):
        out.append((int(j), 0 if s.truncated else 1, "truncated" if s.truncated else "end"))
    for a, b, kind in s.pauses:
        for j in np.flatnonzero((t >= a + after[0]) & (t <= b)):
            out.append((int(j), 0, "pause"))
    speech = np.flatnonzero((t > s.words[0][1] + 0.3) & (t < s.true_end - 0.1)) if s.words else np.zeros(0, int)
    inside = [j for j in speech if not any(a <= t[j] <= b for a, b, _ in s.pauses)]
    for j in rng.choice(inside, size=min(in_speech, len(inside)), replace=False) if inside else []:
        out.append((int(j), 0, "speech"))
    return out


def dataset(signals: list[Signals], k: int, n_last: int, vocab: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = ([], [], [])
    y, kinds = [], []
    for s in signals:
        lab = label_steps(s, rng=rng)
        if not lab or s.encoder is None:
            continue
        f = step_features(s, [j for j, _, _ in lab], k, n_last, vocab)
        for i in range(3):
            X[i].append(f[i])
        y += [l for _, l, _ in lab]
        kinds += [kd for _, _, kd in lab]
    if not y:
        raise ValueError("no labelled steps: the signals have no encoder output, or no utterance has an end")
    return tuple(torch.cat(x) for x in X), torch.tensor(y, dtype=torch.float32), kinds


def train_arbitrator(train: list[Signals], dev: list[Signals], vocab: int, epochs: int = 30, lr: float = 2e-3,
                     batch: int = 256, seed: int = 0, log=print):
    """Returns (model, metrics). Class-balanced BCE; the epoch with the best dev accuracy is kept."""
    torch.manual_seed(seed)
    d_enc = next(s.encoder.shape[1] for s in train if s.encoder is not None)
    model = Arbitrator(d_enc, vocab)
    (Xf, Xl, Xb), y, _ = dataset(train, model.k, model.n_last, vocab, seed)
    (Df, Dl, Db), dy, dkinds = dataset(dev, model.k, model.n_last, vocab, seed + 1)
    pos_weight = ((len(y) - y.sum()) / y.sum().clamp_min(1.0)).detach()
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    best, best_state, t0 = -1.0, None, time.time()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(y))
        for a in range(0, len(y), batch):
            i = perm[a:a + batch]
            loss = loss_fn(model(Xf[i], Xl[i], Xb[i]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            p = torch.sigmoid(model(Df, Dl, Db))
        acc = float(((p >= 0.5).float() == dy).float().mean())
        bal = 0.5 * (float((p[dy == 1] >= 0.5).float().mean()) + float((p[dy == 0] < 0.5).float().mean()))
        if bal > best:
            best, best_state = bal, {k: v.clone() for k, v in model.state_dict().items()}
        if ep % 5 == 4 or ep == epochs - 1:
            log(f"[arbitrator] epoch {ep + 1}: dev accuracy {acc:.3f}, balanced {bal:.3f}")
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        p = torch.sigmoid(model(Df, Dl, Db)).numpy()
    kinds = np.array(dkinds)
    metrics = {"dev_balanced_accuracy": best, "train_examples": int(len(y)), "dev_examples": int(len(dy)),
               "train_positive_share": float(y.mean()), "train_s": round(time.time() - t0, 1),
               "dev_accept_rate_by_kind": {k: float((p[kinds == k] >= 0.5).mean()) for k in sorted(set(dkinds))}}
    try:
        from sklearn.metrics import roc_auc_score
        metrics["dev_auc"] = float(roc_auc_score(dy.numpy(), p))
    except Exception:          # sklearn missing, or one class only
        pass
    return model, metrics


class ArbitratorProbs:
    """P(end of speech) after every recogniser step of an utterance (cached on the Signals)."""

    def __init__(self, model: Arbitrator):
        self.model = model.eval()

    def __call__(self, s: Signals) -> np.ndarray:
        cache = s.__dict__.setdefault("_arbitrator", {})
        key = id(self.model)
        if key not in cache or len(cache[key]) != len(s.step_time):
            if s.encoder is None or len(s.step_time) == 0:
                cache[key] = np.zeros(len(s.step_time), np.float32)
            else:
                c = self.model.config
                f = step_features(s, range(len(s.step_time)), c["k_frames"], c["last_tokens"], c["vocab"])
                with torch.no_grad():
                    cache[key] = torch.sigmoid(self.model(*f)).numpy()
        return cache[key]


def save(model: Arbitrator, out: Path, metrics: dict, info: dict) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".arbitrator.pt.tmp"
    torch.save({"config": model.config, "state_dict": model.state_dict()}, tmp)
    tmp.replace(out / "arbitrator.pt")
    (out / "metrics.json").write_text(json.dumps({**metrics, **info}, indent=1))
    return out


def load(path: str | Path) -> Arbitrator:
    p = Path(path)
    p = p / "arbitrator.pt" if p.is_dir() else p
    if not p.is_file():
        raise FileNotFoundError(f"no arbitrator at {p}: run `python -m workbench train-arbitrator`")
    ck = torch.load(p, map_location="cpu", weights_only=True)
    m = Arbitrator(**ck["config"])
    m.load_state_dict(ck["state_dict"])
    return m.eval()


ARBITRATOR_DIR = Path(__file__).resolve().parents[2] / "data" / "models" / "arbitrator"


def train(model_path=None, corpus_size: str = "default", n_train: int = 1500, n_dev: int = 300,
          context=(70, 1), epochs: int = 30, out=None, device=None) -> Path:
    from ..asr import ledger as ledgers
    from ..asr.recipe import default_recognizer
    from .signals import split_signals
    t0, cpu0 = time.time(), ledgers.cpu_seconds()
    rec, path, shipped = default_recognizer(model_path, context, device)
    tr = split_signals(rec, corpus_size, "train", n_train, prefer_events=True)
    dv = split_signals(rec, corpus_size, "dev", n_dev, prefer_events=True)
    print(f"[arbitrator] recogniser outputs for {len(tr)} train / {len(dv)} dev utterances in {time.time() - t0:.0f} s",
          flush=True)
    vocab = rec.vocab_size
    model, metrics = train_arbitrator(tr, dv, vocab, epochs=epochs)
    out = Path(out or ARBITRATOR_DIR)
    from ..results import file_sha1
    save(model, out, metrics, {"asr_model": str(path), "asr_model_shipped": shipped,
                               "asr_model_sha1": file_sha1(path),   # which recogniser it learnt to read
                               "context": list(rec.att_context), "corpus": corpus_size,
                               "n_train_utterances": len(tr), "n_dev_utterances": len(dv),
                               "params": sum(p.numel() for p in model.parameters()),
                               "wall_s": round(time.time() - t0, 1)})
    print(f"[arbitrator] {json.dumps(metrics)}", flush=True)
    led = out / ledgers.LEDGER_NAME      # the arbitrator's own history: one run per retraining
    ledgers.append(led, {"id": ledgers.next_id(led), "steps": epochs, "step_unit": "epoch",
                         "cpu_hours": round((ledgers.cpu_seconds() - cpu0) / 3600, 3),
                         "wall_hours": round((time.time() - t0) / 3600, 3),
                         "dev_metrics": {k: metrics[k] for k in ("dev_auc", "dev_balanced_accuracy") if k in metrics},
                         "changed": f"retrained on the recogniser {file_sha1(path)} ({n_train} train / {n_dev} dev "
                                    f"utterances)", "asr_model_sha1": file_sha1(path)})
    return out
