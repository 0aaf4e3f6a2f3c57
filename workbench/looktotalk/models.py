"""The directedness classifiers, one per cue, and their fusion.

- acoustic: a GRU over the recogniser's encoder output (every second frame) beside the prosody summary;
- lexical: a GRU over the transcript's tokens;
- visual: a logistic regression over the cue sequence's summary (``visual.summarise``);
each trained like the arbitrator (class-balanced BCE, the epoch with the best dev balanced accuracy kept). The
fusion is score-level: a logistic regression over the three logits and a "missing" flag per cue, fitted on dev
with modality dropout (each utterance seen with every non-empty subset of its cues), so that a denied camera or
an empty transcript still leaves a decision.
"""
from __future__ import annotations

import itertools
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .features import PROSODY, Utterance

CUE_NAMES = ("acoustic", "lexical", "visual")
MODEL_DIR = Path(__file__).resolve().parents[2] / "data" / "models" / "looktotalk"


class AcousticNet(nn.Module):
    def __init__(self, d_enc: int, n_prosody: int = len(PROSODY), d: int = 64):
        super().__init__()
        self.inp = nn.Linear(d_enc, d)
        self.gru = nn.GRU(d, d, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(nn.Linear(2 * d + n_prosody, d), nn.ReLU(), nn.Linear(d, 1))

    def forward(self, frames, lengths, prosody):
        x = torch.relu(self.inp(frames))
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)
        return self.head(torch.cat([h[0], h[1], prosody], 1)).squeeze(1)


class LexicalNet(nn.Module):
    """A GRU over the transcript's tokens beside the domain LM's mean log-probability of it (standardised)."""

    def __init__(self, vocab: int, d: int = 64):
        super().__init__()
        self.emb = nn.Embedding(vocab + 1, d, padding_idx=vocab)
        self.gru = nn.GRU(d, d, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(nn.Linear(2 * d + 1, d), nn.ReLU(), nn.Linear(d, 1))

    def forward(self, tokens, lengths, lm_score):
        packed = nn.utils.rnn.pack_padded_sequence(self.emb(tokens), lengths.clamp_min(1).cpu(), batch_first=True,
                                                   enforce_sorted=False)
        _, h = self.gru(packed)
        return self.head(torch.cat([h[0], h[1], lm_score[:, None]], 1)).squeeze(1)


def _pad(seqs, pad, dtype):
    L = max(1, max(len(s) for s in seqs))
    out = torch.full((len(seqs), L) + tuple(np.asarray(seqs[0]).shape[1:]), pad, dtype=dtype)
    for i, s in enumerate(seqs):
        if len(s):
            out[i, :len(s)] = torch.as_tensor(np.asarray(s), dtype=dtype)
    return out, torch.tensor([max(1, len(s)) for s in seqs])


class Normaliser:
    def __init__(self, x: np.ndarray | None = None, mu=None, sd=None):
        """From the training rows ``x``, or the stored ``mu`` and ``sd`` (a shipped model)."""
        self.mu, self.sd = (x.mean(0), x.std(0) + 1e-6) if x is not None else (np.asarray(mu), np.asarray(sd))

    def __call__(self, x):
        return ((np.asarray(x) - self.mu) / self.sd).astype(np.float32)


def acoustic_inputs(utts: list[Utterance], norm: Normaliser):
    frames, lengths = _pad([u.encoder[::2].astype(np.float32) for u in utts], 0.0, torch.float32)
    return frames, lengths, torch.from_numpy(norm(np.stack([u.prosody for u in utts])))


def lexical_inputs(utts: list[Utterance], vocab: int, lm, lm_norm=(0.0, 1.0)):
    from .features import domain_scores
    tokens, lengths = _pad([u.tokens[:64] for u in utts], vocab, torch.long)
    lp = (domain_scores(lm, [u.transcript for u in utts]) - lm_norm[0]) / lm_norm[1]
    return tokens, lengths, torch.from_numpy(lp.astype(np.float32))


def _train(model, inputs, y, dev_inputs, dy, epochs: int, lr: float, batch: int, seed: int, name: str, log):
    torch.manual_seed(seed)
    y, dy = torch.tensor(y, dtype=torch.float32), torch.tensor(dy, dtype=torch.float32)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=((len(y) - y.sum()) / y.sum().clamp_min(1.0)).detach())
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    best, state, t0 = -1.0, None, time.time()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(y))
        for a in range(0, len(y), batch):
            i = perm[a:a + batch]
            loss = loss_fn(model(*(x[i] for x in inputs)), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            p = torch.sigmoid(model(*dev_inputs))
        bal = 0.5 * (float((p[dy == 1] >= 0.5).float().mean()) + float((p[dy == 0] < 0.5).float().mean()))
        if bal > best:
            best, state = bal, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    log(f"[looktotalk] {name}: dev balanced accuracy {best:.3f} ({time.time() - t0:.0f} s)")
    return model.eval(), best


class DirectednessModels:
    """The three per-cue classifiers and the fusion; ``logits(utts, visual)`` -> (n, 3) per-cue logits."""

    def __init__(self, acoustic, lexical, visual, norm: Normaliser, vocab: int, lm, lm_norm, fusion=None):
        self.acoustic, self.lexical, self.visual, self.norm, self.vocab, self.fusion = \
            acoustic, lexical, visual, norm, vocab, fusion
        self.lm, self.lm_norm = lm, lm_norm

    @torch.no_grad()
    def logits(self, utts: list[Utterance], visual_summaries: np.ndarray) -> np.ndarray:
        a = self.acoustic(*acoustic_inputs(utts, self.norm)).numpy()
        lx = self.lexical(*lexical_inputs(utts, self.vocab, self.lm, self.lm_norm)).numpy()
        v = self.visual.decision_function(visual_summaries)
        return np.stack([a, lx, v], 1)

    def fuse(self, logits: np.ndarray, present=(True, True, True)) -> np.ndarray:
        """Fused score (log-odds) with the cues not ``present`` left out (a denied camera, no transcript)."""
        return self.fusion.decision_function(fusion_inputs(logits, present))

    # -- a shipped default: two state dicts and the small linear parts as JSON (no pickles) ---------------
    def save(self, folder, extra: dict | None = None) -> Path:
        folder = Path(folder)
        tmp = folder.with_name(folder.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        torch.save({"acoustic": self.acoustic.state_dict(), "lexical": self.lexical.state_dict()}, tmp / "nets.pt")
        lin = lambda m: {"coef": m.coef_.tolist(), "intercept": m.intercept_.tolist()}
        meta = {"d_enc": int(self.acoustic.inp.in_features), "vocab": int(self.vocab),
                "norm": {"mu": self.norm.mu.tolist(), "sd": self.norm.sd.tolist()}, "lm_norm": list(self.lm_norm),
                "visual": lin(self.visual), "fusion": lin(self.fusion), "cues": list(CUE_NAMES), **(extra or {})}
        (tmp / "looktotalk.json").write_text(json.dumps(meta, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
        return folder

    @classmethod
    def load(cls, folder=None, lm=None) -> "DirectednessModels":
        """The shipped default (``data/models/looktotalk``, ``python -m workbench train-looktotalk``) or ``folder``."""
        from sklearn.linear_model import LogisticRegression
        from ..lm.domain import load_domain_lm
        folder = Path(folder or MODEL_DIR)
        if not (folder / "looktotalk.json").exists():
            raise FileNotFoundError(f"no look-to-talk model in {folder}: python -m workbench train-looktotalk makes one")
        meta = json.loads((folder / "looktotalk.json").read_text())
        nets = torch.load(folder / "nets.pt", map_location="cpu", weights_only=True)
        ac, lx = AcousticNet(meta["d_enc"]), LexicalNet(meta["vocab"])
        ac.load_state_dict(nets["acoustic"])
        lx.load_state_dict(nets["lexical"])

        def lin(d):
            m = LogisticRegression()
            m.coef_, m.intercept_, m.classes_ = np.array(d["coef"]), np.array(d["intercept"]), np.array([0, 1])
            return m
        norm = Normaliser(mu=np.array(meta["norm"]["mu"], np.float32), sd=np.array(meta["norm"]["sd"], np.float32))
        m = cls(ac.eval(), lx.eval(), lin(meta["visual"]), norm, meta["vocab"], lm or load_domain_lm(device="cpu"),
                tuple(meta["lm_norm"]), lin(meta["fusion"]))
        m.thresholds = meta.get("thresholds", {})
        return m

    def threshold(self, present=(True, True, True)) -> float:
        """P(meant for the device) above which it is, for this cue subset (chosen on dev; 0.5 if unknown)."""
        name = " + ".join(c for c, p in zip(CUE_NAMES, present) if p)
        return float(getattr(self, "thresholds", {}).get(name, 0.5))


def fusion_inputs(logits: np.ndarray, present) -> np.ndarray:
    m = np.broadcast_to(np.asarray(present, bool), logits.shape)
    return np.concatenate([np.where(m, logits, 0.0), (~m).astype(float)], 1)


def subsets():
    """Every non-empty subset of the cues, as presence masks."""
    return [m for m in itertools.product((True, False), repeat=len(CUE_NAMES)) if any(m)]


def fit_fusion(logits: np.ndarray, y):
    """Logistic regression over the cues' logits and missing flags, every utterance under every cue subset
    (modality dropout, exhaustively)."""
    from sklearn.linear_model import LogisticRegression
    X = np.concatenate([fusion_inputs(logits, m) for m in subsets()])
    return LogisticRegression(C=1.0, max_iter=1000).fit(X, np.tile(np.asarray(y, int), len(subsets())))


def train(train_utts: list[Utterance], dev_utts: list[Utterance], train_visual, dev_visual, vocab: int,
          epochs: int = 15, seed: int = 0, log=print, lm=None) -> tuple[DirectednessModels, dict]:
    """Per-cue classifiers on train (visual: its simulated summaries), the fusion on dev; ``lm``: the domain LM
    the lexical cue consults (default the shipped one)."""
    from sklearn.linear_model import LogisticRegression
    from ..lm.domain import load_domain_lm
    from .features import domain_scores
    lm = lm or load_domain_lm(device="cpu")
    tr_lp = domain_scores(lm, [u.transcript for u in train_utts])
    lm_norm = (float(tr_lp.mean()), float(tr_lp.std() + 1e-6))
    y = [u.directed for u in train_utts]
    dy = [u.directed for u in dev_utts]
    norm = Normaliser(np.stack([u.prosody for u in train_utts]))
    d_enc = train_utts[0].encoder.shape[1]
    ac, ac_dev = _train(AcousticNet(d_enc), acoustic_inputs(train_utts, norm), y, acoustic_inputs(dev_utts, norm), dy,
                        epochs, 2e-3, 64, seed, "acoustic", log)
    lx, lx_dev = _train(LexicalNet(vocab), lexical_inputs(train_utts, vocab, lm, lm_norm), y,
                        lexical_inputs(dev_utts, vocab, lm, lm_norm), dy, epochs, 3e-3, 64, seed, "lexical", log)
    vis = LogisticRegression(C=1.0, max_iter=1000, class_weight="balanced").fit(train_visual, np.asarray(y, int))
    models = DirectednessModels(ac, lx, vis, norm, vocab, lm, lm_norm)
    models.fusion = fit_fusion(models.logits(dev_utts, dev_visual), dy)
    return models, {"dev_balanced_accuracy": {"acoustic": ac_dev, "lexical": lx_dev}}


# ---------------------------------------------------------------- the field's figures

def eer(scores, directed) -> float:
    """Equal error rate: where false accepts (side talk taken) equal false rejects (requests ignored)."""
    from sklearn.metrics import det_curve
    far, frr, _ = det_curve(np.asarray(directed, int), np.asarray(scores, float))
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2)


def far_at_frr(scores, directed, frr_target: float = 0.10) -> float:
    """False-accept rate where at most ``frr_target`` of the requests are rejected."""
    from sklearn.metrics import det_curve
    far, frr, _ = det_curve(np.asarray(directed, int), np.asarray(scores, float))
    ok = frr <= frr_target + 1e-12
    return float(far[ok].min()) if ok.any() else 1.0
