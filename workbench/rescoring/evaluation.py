"""The rescoring room measured: every reranker's pick over the recogniser's n-best, scored against the 1-best and the\noracle with paired 95 % intervals, the rerankers built and weighted on dev, and ``domain_reranker``, the shipped\nreranker the widgets, the repair room and notebook 06 apply. ``bench rescoring`` and notebook 07 read it.
"""
from __future__ import annotations

import time
from pathlib import Path
import numpy as np
from .. import stats
from ..events import Final
from .loglinear import LogLinearReranker, _ref_words, lm_scores, nbest_errors, oracle_errors, tune


SETS = {"test": "test", "unseen text": "test_unseen_text", "unseen engine": "test_unseen_engine"}


BASELINE = "1-best (beam)"


NO_LM = "word bonus, no LM"     # what an LM must beat: the beam's deletions undone without reading any text


def picks(reranker, nbests) -> tuple[list[int], list[float]]:
    """Index of the hypothesis the reranker puts first in each list, and the milliseconds each call took."""
    idx, ms = [], []
    for nb in nbests:
        t = time.perf_counter()
        f = reranker(Final("bench", list(nb), 0.0))
        ms.append(1000 * (time.perf_counter() - t))
        top = f.nbest[0] if f.nbest else None
        k = next((k for k, h in enumerate(nb) if h is top), None)                 # the same object, reordered
        if k is None:                                                             # or a copy of it
            k = next((k for k, h in enumerate(nb) if top is not None and h.text == top.text), 0)
        idx.append(k)
    return idx, ms


def _gap_recovered(e_sys, e_one, e_orc, words):
    one, orc = np.sum(e_one), np.sum(e_orc)
    return float((one - np.sum(e_sys)) / (one - orc)) if one > orc else float("nan")


def _relative(e_sys, e_one, words):
    return float(np.sum(e_sys) / max(1.0, np.sum(e_one)) - 1.0)


def score_set(ns, rerankers: dict, seed: int = 0) -> dict:
    """Every reranker on one set's lists: WER, change against the 1-best, oracle gap recovered, latency."""
    errs, words = nbest_errors(ns.refs, ns.nbests), _ref_words(ns.refs)
    one = np.array([e[0] if len(e) else w for e, w in zip(errs, words)])
    orc, _ = oracle_errors(ns.refs, ns.nbests)
    out = {"n": len(ns), "ref_words": int(words.sum()),
           "mean_hypotheses": float(np.mean([len(nb) for nb in ns.nbests])) if len(ns) else 0.0,
           "oracle": {"wer": stats.wer_ci(orc, words, seed=seed)}, "systems": {}}
    chosen = {}
    for name, rr in rerankers.items():
        idx, ms = picks(rr, ns.nbests)
        e = np.array([err[k] if len(err) else w for err, k, w in zip(errs, idx, words)])
        chosen[name] = e
        row = {"wer": stats.wer_ci(e, words, seed=seed),
               "latency_ms": {"p50": stats.stat_ci(ms, lambda v: np.percentile(v, 50), seed=seed),
                              "p95": stats.stat_ci(ms, lambda v: np.percentile(v, 95), seed=seed)},
               "changed": int(sum(k != 0 for k in idx))}
        if name != BASELINE:
            row["relative_change"] = stats.paired_ci((e, one, words), _relative, seed=seed)
            row["oracle_gap_recovered"] = stats.paired_ci((e, one, orc, words), _gap_recovered, seed=seed)
        if name not in (BASELINE, NO_LM) and NO_LM in chosen:      # the LM's own share, beside the same bonus
            row["relative_change_vs_word_bonus"] = stats.paired_ci((e, chosen[NO_LM], words), _relative, seed=seed)
            row["examples"] = [[ns.refs[i], ns.nbests[i][0].text, ns.nbests[i][idx[i]].text]
                               for i in range(len(ns)) if idx[i] != 0][:5]
        out["systems"][name] = row
    return out


def compare_picks(refs: list[str], before: list[str], after: list[str], top: int = 10) -> dict:
    """What a reranker changed: utterances it fixed (fewer errors) and broke (more), with examples, and the
    word substitutions it made most often (before -> after, from jiwer's alignment of the two hypotheses)."""
    import collections

    import jiwer

    from ..asr.scoring import normalize, utterance_errors
    eb, _ = utterance_errors(refs, before)
    ea, _ = utterance_errors(refs, after)
    swaps: collections.Counter = collections.Counter()
    for b, a in zip(before, after):
        b, a = normalize(b), normalize(a)
        if b == a or not b or not a:
            continue
        out = jiwer.process_words(b, a)
        bw, aw = out.references[0], out.hypotheses[0]
        for c in out.alignments[0]:
            if c.type == "substitute":
                swaps[(" ".join(bw[c.ref_start_idx:c.ref_end_idx]), " ".join(aw[c.hyp_start_idx:c.hyp_end_idx]))] += 1
            elif c.type == "delete":
                swaps[(" ".join(bw[c.ref_start_idx:c.ref_end_idx]), "")] += 1
            elif c.type == "insert":
                swaps[("", " ".join(aw[c.hyp_start_idx:c.hyp_end_idx]))] += 1
    fixed = [i for i in range(len(refs)) if ea[i] < eb[i]]
    broken = [i for i in range(len(refs)) if ea[i] > eb[i]]
    return {"changed": int(sum(normalize(b) != normalize(a) for b, a in zip(before, after))),
            "fixed": len(fixed), "broken": len(broken),
            "fixed_examples": [[refs[i], before[i], after[i]] for i in fixed[:top]],
            "broken_examples": [[refs[i], before[i], after[i]] for i in broken[:top]],
            "edits": [[b, a, n] for (b, a), n in swaps.most_common(top)]}


def build_rerankers(dev, lms: dict, finetuned=None, log=print) -> tuple[dict, dict]:
    """The rerankers, log-linear weights tuned on ``dev``: {name: reranker}, {name: how it was set}."""
    rr = {BASELINE: LogLinearReranker(None, 0.0, 0.0)}
    zeros = [np.zeros(len(nb)) for nb in dev.nbests]
    t = tune(dev.refs, dev.nbests, zeros, lambdas=(0.0,))
    rr[NO_LM] = LogLinearReranker(None, 0.0, t["beta"])
    how = {BASELINE: {"lambda": 0.0, "beta": 0.0}, NO_LM: {"beta": t["beta"], "dev_wer": t["wer"]}}
    for name, (lm, context) in lms.items():
        t0 = time.time()
        t = tune(dev.refs, dev.nbests, lm_scores(lm, dev.nbests, context, strict=False))
        rr[name] = LogLinearReranker(lm, t["lambda"], t["beta"], context)
        how[name] = {"lambda": t["lambda"], "beta": t["beta"], "dev_wer": t["wer"], "params": lm.n_params,
                     "context": context, "tuning_s": round(time.time() - t0, 1)}
        if log:
            log(f"{name}: lambda {t['lambda']}, beta {t['beta']}, dev WER {t['wer']:.4f}")
    if finetuned is not None:
        name, reranker, record = finetuned
        rr[name] = reranker
        how[name] = {"lambda": reranker.lam, "beta": reranker.beta, "params": reranker.lm.n_params,
                     "context": reranker.context, "trained": {k: record.get(k) for k in (
                         "scorer", "train_split", "train_lists", "steps", "best_step", "dev_wer", "train_seconds",
                         "trainable_params", "n_val", "init")}}
    return rr, how


def fast_variant(ft_path, dev, log=print, dtype=None) -> tuple[str, LogLinearReranker, dict]:
    """The fine-tuned reranker made cheaper for a 2-core CPU: its merged LM in ``dtype`` (bfloat16 by default)
    and the LM reading only the ``top_k`` hypotheses best by acoustic + beta * words, the smallest k whose dev
    WER is within 0.2 points of reading all (``choose_top_k``, scored with the same bfloat16 LM)."""
    import torch
    from .loglinear import choose_top_k
    from .mwer import load_mwer_reranker
    dtype = dtype or torch.bfloat16
    rr = load_mwer_reranker(ft_path, dtype=dtype)
    t0 = time.time()
    ch = choose_top_k(dev.refs, dev.nbests, lm_scores(rr.lm, dev.nbests, rr.context, strict=False), rr.lam, rr.beta)
    rr.top_k = ch["top_k"]
    dt = str(dtype).replace("torch.", "")
    if log:
        log(f"fast variant ({dt}): top_k {ch['top_k']} (dev WER {ch['wer']:.4f}, all hypotheses {ch['wer_all']:.4f})")
    name = f"the same, {dt}, LM reads the top {ch['top_k']}" if ch["top_k"] else f"the same, {dt}"
    return name, rr, {"dtype": dt, "top_k": ch, "tuning_s": round(time.time() - t0, 1)}


def domain_reranker(results=None, lm=None) -> LogLinearReranker:
    """The domain-LM reranker with the weights ``bench rescoring`` tuned on dev (read from the committed
    ``benchmarks/results/bench_rescoring.json``): what a widget or a notebook applies live."""
    import json
    from ..lm.domain import load_domain_lm
    from ..results import RESULTS
    path = Path(results or RESULTS) / "bench_rescoring.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python -m workbench bench rescoring` to tune the weights")
    how = json.loads(path.read_text())["systems"]
    name = next((n for n in how if n.startswith("domain LM")), None)
    if name is None:
        raise KeyError(f"{path} has no domain-LM system: {sorted(how)}")
    return LogLinearReranker(lm or load_domain_lm(), float(how[name]["lambda"]), float(how[name]["beta"]))


def plot(result: dict, ax=None):
    """WER per set, one bar per system (and the oracle), 95 % intervals."""
    import matplotlib.pyplot as plt
    sets = list(result["sets"])
    names = list(next(iter(result["sets"].values()))["systems"]) + ["oracle"]
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 4.2))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        rows = [result["sets"][s]["oracle"] if name == "oracle" else result["sets"][s]["systems"][name] for s in sets]
        ys = np.array([100 * r["wer"]["value"] for r in rows])
        lo = ys - [100 * r["wer"]["ci95"][0] for r in rows]
        hi = np.array([100 * r["wer"]["ci95"][1] for r in rows]) - ys
        ax.bar(np.arange(len(sets)) + k * width, ys, width, yerr=[lo, hi], capsize=2, label=name,
               hatch="//" if name == "oracle" else None)
    ax.set_xticks(np.arange(len(sets)) + 0.4 - width / 2, sets)
    ax.set_ylabel("WER (%)")
    ax.set_title("N-best reranking: the same lists, one normalisation (weights tuned on dev)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    return ax


def headline(result: dict, system: str | None = None, set_name: str = "test") -> dict:
    """The issue's goals for ``system`` (default: the fine-tuned one, else the last) on ``set_name``."""
    s = result["sets"][set_name]["systems"]
    system = system or next((n for n in s if "fine-tuned" in n), list(s)[-1])
    r = s[system]
    return {"system": system, "relative_change": r.get("relative_change"),
            "relative_change_vs_word_bonus": r.get("relative_change_vs_word_bonus"),
            "oracle_gap_recovered": r.get("oracle_gap_recovered"), "p95_ms": r["latency_ms"]["p95"],
            "goal_relative_reduction": 0.15, "goal_gap_recovered": 0.5, "goal_p95_ms": 100.0}
