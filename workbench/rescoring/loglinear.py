"""Log-linear n-best rescoring: score = acoustic + lambda * LM + beta * words.

Why this shape: the acoustic score (RNNT log-likelihood) and the LM log-probability are both log-domain, so a
weighted sum is the standard second pass (shallow fusion after the fact); the word bonus beta offsets the LM's
bias towards short hypotheses. The weights are chosen on dev by grid search on WER, never on test.
The errors are counted by the one accounting every recogniser shares (``workbench.asr.scoring``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..asr.scoring import normalize, utterance_errors
from ..events import Final, Hypothesis
from ..lm import CausalLM, HeadLM, LMInputError, encode, head_scores, score_texts


class NBestError(ValueError):
    """An n-best list that cannot be reranked (no hypotheses where some were required)."""


def lm_scores(lm: CausalLM, nbests: list[list[Hypothesis]], context: str = "", batch_size: int = 64,
              strict: bool = True) -> list[np.ndarray | None]:
    """LM log-probability of every hypothesis (its normalised text, end symbol included), all lists batched
    together in one pass over the texts. A list holding a text the LM cannot score (``LMInputError``: longer
    than its positions) raises, or with ``strict=False`` gets ``None``: the reranker leaves such a list in the
    recogniser's order, and tuning counts it that way."""
    keep = list(range(len(nbests)))
    if not strict:
        keep = []
        for i, nb in enumerate(nbests):
            try:
                encode(lm, [normalize(h.text) for h in nb], True, context)
                keep.append(i)
            except LMInputError:
                pass
    texts = [normalize(h.text) for i in keep for h in nbests[i]]
    flat = text_scores(lm, texts, context, batch_size)
    out: list[np.ndarray | None] = [None] * len(nbests)
    k = 0
    for i in keep:
        out[i] = flat[k:k + len(nbests[i])]
        k += len(nbests[i])
    return out


def text_scores(lm: CausalLM, texts: list[str], context: str = "", batch_size: int = 64) -> np.ndarray:
    """The LM feature of each text: its log-probability (end symbol included), or for a ``HeadLM`` (the
    fine-tuned sequence scorer) its head's score."""
    if isinstance(lm, HeadLM):
        import torch
        ids, _ = encode(lm, texts, True, context)
        with torch.inference_mode():
            return np.concatenate([head_scores(lm, ids[b:b + batch_size]).cpu().numpy()
                                   for b in range(0, len(ids), batch_size)]) if ids else np.zeros(0)
    return np.array([s.total for s in score_texts(lm, texts, batch_size=batch_size, context=context)])


def _features(nb: list[Hypothesis]) -> tuple[np.ndarray, np.ndarray]:
    """(acoustic scores, normalised word counts) of a list: computed once, reused for every weight tried."""
    return np.array([h.score for h in nb]), np.array([len(normalize(h.text).split()) for h in nb])


def _totals(feats, lm: np.ndarray, lam: float, beta: float, top_k: int | None = None) -> np.ndarray:
    """The log-linear score of every hypothesis; with ``top_k``, only the ``top_k`` best by the LM-free part
    (acoustic + beta * words) compete, as when ``pruned`` kept the LM from scoring the rest."""
    am, words = feats
    total = am + lam * lm + beta * words
    if top_k is not None and len(total) > top_k:
        total = np.where(np.isin(np.arange(len(total)), pruned(feats, beta, top_k)), total, -np.inf)
    return total


def pruned(feats, beta: float, top_k: int | None) -> np.ndarray:
    """Indices of the hypotheses an LM needs to score: the ``top_k`` best by acoustic + beta * words (all
    with ``top_k=None``). Why: on 2 CPU cores a 135 M LLM's cost grows with the hypotheses it reads, and the
    word bonus alone already tells which few can still win."""
    am, words = feats
    if top_k is None or len(am) <= top_k:
        return np.arange(len(am))
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, not {top_k}")
    return np.sort(np.argsort(-(am + beta * words), kind="stable")[:top_k])


def _ref_words(refs: list[str]) -> np.ndarray:
    return utterance_errors(refs, [""] * len(refs))[1]


def nbest_errors(refs: list[str], nbests: list[list[Hypothesis]]) -> list[np.ndarray]:
    """Word errors of every hypothesis of every list (after the shared normalisation)."""
    out = []
    for r, nb in zip(refs, nbests):
        out.append(utterance_errors([r] * len(nb), [h.text for h in nb])[0] if nb else np.zeros(0))
    return out


def oracle_errors(refs: list[str], nbests: list[list[Hypothesis]]) -> tuple[np.ndarray, np.ndarray]:
    """(errors, reference words) per utterance when the best hypothesis of each list is picked: the floor
    of any reranker over these lists."""
    errs = nbest_errors(refs, nbests)
    words = _ref_words(refs)
    return np.array([e.min() if len(e) else w for e, w in zip(errs, words)]), words


def rerank_errors(refs, nbests, lm_s, lam: float, beta: float, errs=None, words=None, feats=None,
                  top_k: int | None = None) -> np.ndarray:
    """Errors per utterance of the hypothesis the log-linear score picks (``errs``, ``words``, ``feats``:
    ``nbest_errors``, reference words and list features computed once by a caller that tries many weights;
    ``top_k``: the pick when the LM reads only the ``top_k`` hypotheses ``pruned`` keeps)."""
    errs = errs if errs is not None else nbest_errors(refs, nbests)
    words = words if words is not None else _ref_words(refs)
    feats = feats if feats is not None else [_features(nb) for nb in nbests]
    return np.array([(e[0] if s is None else e[int(np.argmax(_totals(f, s, lam, beta, top_k)))]) if len(e) else w
                     for f, s, e, w in zip(feats, lm_s, errs, words)])   # None: the LM could not score it


def tune(refs: list[str], nbests: list[list[Hypothesis]], lm_s: list[np.ndarray],
         lambdas=(0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5), betas=(-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)) -> dict:
    """The (lambda, beta) with the lowest corpus WER on these (dev) lists; ties go to the smaller weights.
    Returns {"lambda", "beta", "wer", "grid": [[lambda, beta, wer], ...]}."""
    if len(refs) != len(nbests) or len(nbests) != len(lm_s):
        raise NBestError(f"{len(refs)} references, {len(nbests)} n-best lists and {len(lm_s)} LM score lists")
    if not any(len(nb) for nb in nbests):
        raise NBestError("every n-best list is empty: nothing to tune on")
    errs, words, feats = nbest_errors(refs, nbests), _ref_words(refs), [_features(nb) for nb in nbests]
    n = max(1.0, float(words.sum()))
    grid = [[float(lam), float(beta), float(rerank_errors(refs, nbests, lm_s, lam, beta, errs, words, feats).sum() / n)]
            for lam in lambdas for beta in betas]
    best = min(grid, key=lambda g: (round(g[2], 9), g[0], abs(g[1])))
    return {"lambda": best[0], "beta": best[1], "wer": best[2], "grid": grid}


def choose_top_k(refs: list[str], nbests: list[list[Hypothesis]], lm_s: list[np.ndarray], lam: float, beta: float,
                 ks=(1, 2, 3, 4, 5, 6), tolerance: float = 0.002) -> dict:
    """The smallest ``top_k`` whose WER on these (dev) lists is within ``tolerance`` (absolute) of scoring every
    hypothesis, for fixed weights. Returns {"top_k" (None: no pruning helps), "wer", "wer_all", "curve"}."""
    errs, words, feats = nbest_errors(refs, nbests), _ref_words(refs), [_features(nb) for nb in nbests]
    n = max(1.0, float(words.sum()))
    full = float(rerank_errors(refs, nbests, lm_s, lam, beta, errs, words, feats).sum() / n)
    curve = [[int(k), float(rerank_errors(refs, nbests, lm_s, lam, beta, errs, words, feats, k).sum() / n)] for k in ks]
    ok = [(k, w) for k, w in curve if w <= full + tolerance]
    k, w = ok[0] if ok else (None, full)
    return {"top_k": k, "wer": w, "wer_all": full, "curve": curve, "tolerance": tolerance}


@dataclass
class LogLinearReranker:
    """Reorders a ``Final``'s n-best by acoustic + lambda * LM + beta * words; the best becomes ``nbest[0]``
    (what ``Final.text`` returns). An empty or one-hypothesis list passes through unchanged, and so does a
    list the LM cannot score (``LMInputError``: e.g. a hypothesis longer than its positions): inside a stream
    the fallback is the recogniser's own order, never a crash. ``lm=None``: the word bonus alone (no LM).
    ``top_k``: the LM reads only the ``top_k`` hypotheses best by acoustic + beta * words (``pruned``); the
    rest follow them in that order."""
    lm: CausalLM | None
    lam: float = 0.3
    beta: float = 0.0
    context: str = ""
    top_k: int | None = None

    def rerank(self, final: Final) -> Final:
        if len(final.nbest) < 2:
            return final
        feats = _features(final.nbest)
        keep = pruned(feats, self.beta, self.top_k)
        s = np.zeros(len(final.nbest))
        if self.lm is not None and self.lam != 0.0 and len(keep) > 1:
            try:
                s[keep] = text_scores(self.lm, [normalize(final.nbest[int(i)].text) for i in keep], self.context)
            except LMInputError:
                return final
        total = _totals(feats, s, self.lam, self.beta, self.top_k)
        total = np.where(np.isinf(total), feats[0] + self.beta * feats[1] - 1e9, total)   # pruned: LM-free order
        order = np.argsort(-total, kind="stable")
        return replace(final, nbest=[final.nbest[int(i)] for i in order])

    __call__ = rerank

    def explain(self, nbest: list[Hypothesis], ref: str | None = None) -> list[dict]:
        """One row per hypothesis, in the recogniser's order: its acoustic score, LM log-probability, words,
        the total this reranker ranks by, its new rank and (with ``ref``) its word errors."""
        if not nbest:
            return []
        am, words = _features(nbest)
        s = lm_scores(self.lm, [nbest], self.context)[0] if self.lm is not None else np.zeros(len(nbest))
        total = _totals((am, words), s, self.lam, self.beta)
        rank = np.empty(len(nbest), int)
        rank[np.argsort(-total, kind="stable")] = np.arange(len(nbest))
        errs = utterance_errors([ref] * len(nbest), [h.text for h in nbest])[0] if ref is not None else [None] * len(nbest)
        return [{"hypothesis": h.text, "acoustic": float(a), "lm": float(l), "words": int(w), "total": float(t),
                 "rank_after": int(r), "errors": None if e is None else int(e)}
                for h, a, l, w, t, r, e in zip(nbest, am, s, words, total, rank, errs)]
