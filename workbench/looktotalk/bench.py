"""``python -m workbench bench looktotalk``: is this speech meant for the device? Per cue and fused.

Requests (the corpus's own, ``directed``) against side talk (``side_talk_corpus``: held-out side-talk templates in
dev and test), the same speakers per split. The per-cue classifiers train on the train split, the fusion and
every threshold are chosen on dev, the figures are on test: EER and the false-accept rate at 10 % false rejects,
each with a bootstrap interval over utterances; DET curves; accuracy with a cue missing; false accepts by
side-talk kind; the decision's latency after the end-point; the running score (EER with half of the speech heard,
and at its end); a diagnosis (the recogniser's WER per class, and the classifiers retrained on the reference
transcripts, whole utterances only). The visual cue is **simulated** (``visual.py``).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..stats import paired_ci, rate_ci, stat_ci
from .models import CUE_NAMES, eer, far_at_frr, subsets
from .visual import FPS, summarise

GOALS = {"fused EER": 0.05, "fused EER / best single cue's": 0.5, "decision ms p95": 100.0}


def _visual(utts, seed: int):
    from .visual import simulate
    rng = np.random.default_rng(seed)
    seqs = [simulate(u.directed, u.duration, rng) for u in utts]
    return seqs, np.stack([summarise(s) for s in seqs])


def _name(mask) -> str:
    return " + ".join(c for c, m in zip(CUE_NAMES, mask) if m)


def _threshold_at_eer(scores, y) -> float:
    from sklearn.metrics import det_curve
    far, frr, th = det_curve(np.asarray(y, int), np.asarray(scores, float))
    return float(th[int(np.argmin(np.abs(far - frr)))])


def measure(models, L, DL, test_utts, dev_directed, seed: int = 0, log=print) -> dict:
    """Every subset of cues through the fusion: EER and false accepts at 10 % false rejects (bootstrap intervals),
    and at the threshold chosen on dev (the EER point there): accuracy, false accepts by side-talk kind, false
    rejects. ``L``/``DL``: the per-cue logits of test/dev (``models.logits``)."""
    te = test_utts
    y = np.array([u.directed for u in te], int)
    dy = np.asarray(dev_directed, int)
    systems = {}
    for mask in subsets():
        name = _name(mask)
        s, ds = models.fuse(L, mask), models.fuse(DL, mask)
        th = _threshold_at_eer(ds, dy)                      # the operating point, chosen on dev
        acc = (s >= th).astype(int) == y
        systems[name] = {
            "cues": [c for c, m in zip(CUE_NAMES, mask) if m],
            "EER": paired_ci((s, y), lambda a, b: eer(a, b) if 0 < b.sum() < len(b) else np.nan, seed=seed),
            "FAR at 10 % FRR": paired_ci((s, y), lambda a, b: far_at_frr(a, b) if 0 < b.sum() < len(b) else np.nan,
                                         seed=seed),
            "accuracy at the dev threshold": rate_ci(int(acc.sum()), len(acc)),
            "false accepts by side-talk kind": {k: rate_ci(int(sum(a for a, u in zip(s >= th, te) if u.kind == k)),
                                                           sum(u.kind == k for u in te))
                                                for k in sorted({u.kind for u in te if not u.directed})},
            "false rejects (requests)": rate_ci(int(sum((a < th) for a, u in zip(s, te) if u.directed)),
                                                int(y.sum())),
        }
        log(f"[looktotalk] {name}: EER {systems[name]['EER']['value']:.3f}, "
            f"accuracy {systems[name]['accuracy at the dev threshold']['value']:.3f}")
    return systems


def cues_until(seq, heard, utt):
    """The simulated camera cues up to the moment ``heard`` (``Utterance.heard``) was read: ``visual.simulate``
    starts its sequence half a second before the speech."""
    return seq[: max(1, int(round((0.5 + heard.duration - utt.speech_start) * FPS)))]


def with_prefixes(utts, seqs):
    """Each utterance also as heard part of the way (``features.PREFIXES``) with the camera's cues up to then: the
    classifiers train on all of them so that the running score means what the final one does (trained on whole
    utterances only, the score with half of the speech heard was at chance without the camera)."""
    from .features import PREFIXES
    U, Q = list(utts), list(seqs)
    for name in PREFIXES:
        for u, q in zip(utts, seqs):
            h = u.heard(name)
            U.append(h)
            Q.append(cues_until(q, h, u))
    return U, np.stack([summarise(q) for q in Q])


def fit(tr, dv, train_seqs, dev_seqs, vocab: int, epochs: int = 15, seed: int = 0, log=print):
    """The bench's recipe (the notebook and train-looktotalk call it too): every cue's classifier on train and the
    fusion on dev, each utterance whole and as heard part of the way."""
    from .models import train
    (atr, atrv), (adv, advv) = with_prefixes(tr, train_seqs), with_prefixes(dv, dev_seqs)
    return train(atr, adv, atrv, advv, vocab, epochs, seed, log)


def running(models, utts, seqs, seed: int = 0) -> dict:
    """The running score: EER when only part of the speech has been heard (``features.PREFIXES``: half of it, all
    of it but before the recogniser's last words), all cues and without the camera; the same scoring path as the
    live widget (``Utterance.heard``, the camera's cues up to that moment)."""
    from .features import PREFIXES
    y = np.array([u.directed for u in utts], int)
    out = {}
    for name in PREFIXES:
        heard = [u.heard(name) for u in utts]
        vis = np.stack([summarise(cues_until(q, h, u)) for q, h, u in zip(seqs, heard, utts)])
        L = models.logits(heard, vis)
        out[name] = {"heard_s_mean": float(np.mean([h.duration - u.speech_start for h, u in zip(heard, utts)]))}
        for mask in [(True, True, True), (True, True, False)]:
            sc = models.fuse(L, mask)
            out[name][_name(mask)] = paired_ci((sc, y), lambda a, b: eer(a, b) if 0 < b.sum() < len(b) else np.nan,
                                               seed=seed)
    return out


def diagnosis(tr, dv, te, trv, dvv, tev, tokenizer, vocab: int, epochs: int, seed: int, log=print) -> dict:
    """Where the lexical cue's errors come from: the recogniser's WER on requests and on side talk (Whisper's
    normaliser, as every WER here), and every classifier retrained with the reference transcripts in place of the
    recogniser's (an oracle: what a recogniser that heard side talk right would allow)."""
    from dataclasses import replace
    from ..asr.scoring import wer_ci
    from .models import train
    wer = {lab: {k: v for k, v in wer_ci([u.text for u in te if u.directed == d],
                                         [u.transcript for u in te if u.directed == d], seed=seed).items()
                 if k not in ("errors", "words")} for lab, d in (("requests", True), ("side talk", False))}
    ora = lambda us: [replace(u, tokens=list(tokenizer.text_to_ids(u.text.lower())), transcript=u.text.lower()) for u in us]
    otr, odv, ote = ora(tr), ora(dv), ora(te)
    m, _ = train(otr, odv, trv, dvv, vocab, epochs, seed, lambda *a: None)
    L = m.logits(ote, tev)
    y = np.array([u.directed for u in ote], int)
    ci = lambda sc: paired_ci((sc, y), lambda a, b: eer(a, b) if 0 < b.sum() < len(b) else np.nan, seed=seed)
    out = {"recogniser WER on test": wer,
           "EER with reference transcripts": {_name(mk): ci(m.fuse(L, mk)) for mk in
                                              [(False, True, False), (True, True, False), (True, True, True)]}}
    log("[looktotalk] diagnosis: WER requests {:.2f}, side talk {:.2f}; with reference transcripts: ".format(
        wer["requests"]["value"], wer["side talk"]["value"]) + ", ".join(
        f"{k} {v['value']:.3f}" for k, v in out["EER with reference transcripts"].items()))
    return out


def thresholds(models, DL, dev_directed) -> dict:
    """P(meant for the device) at the dev EER point, per cue subset: what the live widget decides with."""
    from scipy.special import expit
    return {_name(m): float(expit(_threshold_at_eer(models.fuse(DL, m), dev_directed))) for m in subsets()}


def run(corpus_size: str = "default", n_train: int = 800, n_dev: int = 300, n_test: int = 500, seed: int = 0,
        epochs: int = 15, out_dir=None, results_dir=None, threads: int = 2, cache: bool = True, log=print,
        save_models=None, command: str | None = None) -> dict:
    """Train on train, choose on dev, measure on test; ``save_models``: also write the trained models there
    (``train-looktotalk`` ships them in data/models/looktotalk)."""
    import torch
    from ..asr.recipe import default_recognizer
    from ..data import ensure_corpus, side_talk_corpus
    from ..results import repo_path, save_bench
    from .features import split_features
    t0 = time.time()
    torch.set_num_threads(threads)
    corpus, side = ensure_corpus(corpus_size), side_talk_corpus(corpus_size)
    rec, asr_path, _ = default_recognizer(None, (70, 1))
    tr, dv, te = (split_features(corpus, side, s, n, rec, cache=cache, log=log, model_path=asr_path)
                  for s, n in (("train", n_train), ("dev", n_dev), ("test", n_test)))
    tr, dv, te = list(tr), list(dv), list(te)
    (trq, trv), (dvq, dvv), (teq, tev) = _visual(tr, seed), _visual(dv, seed + 1), _visual(te, seed + 2)
    models, info = fit(tr, dv, trq, dvq, rec.vocab_size, epochs, seed, log)
    y = np.array([u.directed for u in te], int)
    dy = np.array([u.directed for u in dv], int)
    L, DL = models.logits(te, tev), models.logits(dv, dvv)
    systems = measure(models, L, DL, te, dy, seed, log)
    single = {c: systems[c]["EER"]["value"] for c in CUE_NAMES}
    best = min(single, key=single.get)
    fused = systems[_name((True, True, True))]["EER"]["value"]
    # conversational delivery (faster, quieter) is the corpus's doing: how the acoustic cue fares without it
    conv = np.array([u.directed or u.delivery == "request" for u in te])
    s_ac = models.fuse(L, (True, False, False))
    lat = _latency(models, te[:100], tev[:100])
    run_eer = running(models, te, teq, seed)
    diag = diagnosis(tr, dv, te, trv, dvv, tev, rec.tokenizer, rec.vocab_size, epochs, seed, log)
    log("[looktotalk] running score EER: " + ", ".join(
        f"{k} ({v['heard_s_mean']:.1f} s heard) {v[_name((True, True, True))]['value']:.3f}" for k, v in run_eer.items()))
    result = {"corpus": repo_path(corpus), "side_talk_corpus": repo_path(side), "asr_model": repo_path(asr_path),
              "n": {"train": len(tr), "dev": len(dv), "test": len(te), "test_side_talk": int((1 - y).sum())},
              "visual": "simulated (workbench/looktotalk/visual.py)", "systems": systems, "train": info,
              "acoustic EER, side talk delivered like requests only": paired_ci(
                  (s_ac[conv], y[conv]), lambda a, b: eer(a, b), seed=seed),
              "best single cue": best, "fused EER / best single cue's": fused / max(single[best], 1e-9),
              "command": command or "python -m workbench bench looktotalk",
              "decision_ms": lat, "running score": run_eer, "diagnosis": diag, "threads": threads, "goals": GOALS}
    result["headline"] = {"fused EER": fused, "best single cue EER": single[best],
                          "fused EER / best single cue's": result["fused EER / best single cue's"],
                          "decision ms p95": lat["p95"]["value"]}
    result["headline"]["met"] = {k: result["headline"][k] <= v for k, v in GOALS.items()}
    result["wall_s"] = round(time.time() - t0, 1)
    if save_models is not None:
        th = thresholds(models, DL, dy)
        models.save(save_models, {"thresholds": th, "trained_on": {"corpus": result["corpus"],
                                  "side_talk_corpus": result["side_talk_corpus"], "asr_model": result["asr_model"],
                                  "n": result["n"], "seed": seed, "epochs": epochs},
                                  "test": {k: result["headline"][k] for k in ("fused EER", "best single cue EER")}})
        result["saved_models"] = str(save_models)
    out_dir = Path(out_dir or Path("reports") / "bench" / time.strftime("%Y-%m-%d"))
    save_bench(out_dir, "bench_looktotalk", result, {"looktotalk_det.png": det_plot(models, L, y)}, results_dir)
    result["out_dir"] = str(out_dir)
    return result


def _latency(models, utts, vis) -> dict:
    """Milliseconds from the end-point to the decision, one utterance at a time: the per-cue classifiers on what
    the recogniser and the camera already produced, then the fusion."""
    ms = []
    for u, v in zip(utts, vis):
        t0 = time.perf_counter()
        models.fuse(models.logits([u], v[None]))
        ms.append(1000 * (time.perf_counter() - t0))
    return {"p50": stat_ci(ms, lambda x: np.percentile(x, 50)), "p95": stat_ci(ms, lambda x: np.percentile(x, 95)),
            "n": len(ms)}


def det_plot(models, L, y, ax=None):
    """DET curves (sklearn) of each cue alone and the fusions that matter."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import DetCurveDisplay
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 5))
    else:
        fig = ax.figure
    for mask in [(True, False, False), (False, True, False), (False, False, True), (True, True, False),
                 (True, True, True)]:
        name = _name(mask) + (" (simulated)" if mask[2] else "")
        DetCurveDisplay.from_predictions(y, models.fuse(L, mask), ax=ax, name=name)
    ax.set_title("look-to-talk on test: false accepts vs false rejects")
    return fig
