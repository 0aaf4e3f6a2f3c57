"""Operating points of the end-pointers: each end-pointer's settings swept into a trade-off curve (cut-off
rate against EP90) on dev, the setting on its Pareto front within the pause baseline's EP90 chosen there, and
those settings reported once on test with 95 % intervals and the paired difference against the baseline.
``bench endpoint``, notebooks 04-05, the tuning widget and the repair room's end-pointing all read this.
"""
from __future__ import annotations

import numpy as np

from .endpointers import EouEndpointer, PauseEndpointer, TwoPassEndpointer, sweep

PAUSES_MS = (100, 200, 300, 400, 500, 600, 700, 800, 1000, 1200, 1500)
THETAS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
ARB_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
FIRST_PASS_MS = (150, 250, 400)

BASELINE = ("pause", 500)        # the operating point every other end-pointer is matched against



def make_endpointer(name: str, setting, arbitrator_probs=None, max_wait_ms: float = 1500.0):
    """The end-pointer ``name`` ('pause', 'eou', 'two-pass') at one swept setting."""
    if name == "pause":
        return PauseEndpointer(setting)
    if name == "eou":
        return EouEndpointer(setting)
    if name == "two-pass":
        if arbitrator_probs is None:
            raise ValueError("the two-pass end-pointer needs an arbitrator")
        first, thr = setting
        return TwoPassEndpointer(PauseEndpointer(first), arbitrator_probs, thr, max_wait_ms)
    raise ValueError(f"unknown end-pointer {name!r}: use 'pause', 'eou' or 'two-pass'")


def variant_endpointer(name: str, setting, probs, max_wait_ms: float, variants: dict | None):
    """``make_endpointer``, where a name of ``variants`` is a two-pass end-pointer whose arbitrator's
    probabilities ``variants[name](probs)`` makes (e.g. the arbitrator consulting the repair room's parser);
    a variant given as ``(make_probs, max_wait_ms)`` has a maximum wait of its own."""
    if variants and name in variants:
        make, wait = variants[name] if isinstance(variants[name], tuple) else (variants[name], max_wait_ms)
        return make_endpointer("two-pass", setting, make(probs), wait)
    return make_endpointer(name, setting, probs, max_wait_ms)


def settings_of(arbitrator=None, signals=None, pauses_ms=PAUSES_MS, thetas=THETAS, arb_thresholds=ARB_THRESHOLDS,
                first_pass_ms=FIRST_PASS_MS) -> dict:
    """Every end-pointer's swept settings (EOU only when the recogniser gives P(<EOU>))."""
    out = {"pause": list(pauses_ms)}
    if signals is None or any(len(s.eou_prob) for s in signals):
        out["eou"] = list(thetas)
    if arbitrator is not None:
        out["two-pass"] = [(f, a) for f in first_pass_ms for a in arb_thresholds]
    return out


def curves(signals, arbitrator=None, pauses_ms=PAUSES_MS, thetas=THETAS, arb_thresholds=ARB_THRESHOLDS,
           first_pass_ms=FIRST_PASS_MS, max_wait_ms: float = 1500.0, variants: dict | None = None) -> dict:
    """Trade-off curve of every end-pointer over ``signals`` (``variants``: more two-pass end-pointers, swept
    over the two-pass settings, see ``_endpointer``)."""
    probs = None
    if arbitrator is not None:
        from .arbitrator import ArbitratorProbs
        probs = ArbitratorProbs(arbitrator)
    grid = settings_of(arbitrator, signals, pauses_ms, thetas, arb_thresholds, first_pass_ms)
    if arbitrator is not None:
        grid.update({v: grid["two-pass"] for v in variants or {}})
    return {name: sweep(lambda st, name=name: variant_endpointer(name, st, probs, max_wait_ms, variants), sts, signals)
            for name, sts in grid.items()}


def select_and_report(dev, test, arbitrator=None, max_wait_ms: float = 1500.0, baseline=BASELINE, seed: int = 0,
                      variants: dict | None = None) -> dict:
    """Choose each end-pointer's setting on ``dev`` (its Pareto front's best within the baseline's dev EP90),
    then score those settings once on ``test`` with 95 % intervals; the paired difference of each one's
    cut-off rate against the baseline's on the same test utterances (``within_noise`` when its interval
    holds 0) and the ratio the issue's goal reads."""
    from ..stats import paired_diff_ci
    from .metrics import best_at_ep90, outcome_cis, summarize
    from .endpointers import score
    probs = None
    if arbitrator is not None:
        from .arbitrator import ArbitratorProbs
        probs = ArbitratorProbs(arbitrator)
    dev_cv = curves(dev, arbitrator, max_wait_ms=max_wait_ms, variants=variants)
    base_name, base_setting = baseline
    base_row = next((r for r in dev_cv[base_name] if r["setting"] == base_setting), None)
    budget = base_row["EP90_ms"] if base_row else float("nan")
    rule = f"the EP90 of {base_name} {base_setting} on dev"
    fastest = {name: min((r["EP90_ms"] for r in c if np.isfinite(r["EP90_ms"])), default=np.inf)
               for name, c in dev_cv.items()}
    slow = [n for n, f in fastest.items() if np.isfinite(f) and f > budget]
    if slow and np.isfinite(budget):
        # an end-pointer cannot be as fast as the production setting at all: compare everyone, the baseline
        # included, at the smallest dev EP90 that every one of them reaches
        budget = max(f for f in fastest.values() if np.isfinite(f))
        rule = (f"the smallest dev EP90 every end-pointer reaches ({', '.join(slow)} cannot reach "
                f"{base_name} {base_setting}'s {base_row['EP90_ms']:.0f} ms); the baseline's setting chosen there too")
    selected = {}
    for name, c in dev_cv.items():
        row = best_at_ep90(c, budget)
        selected[name] = None if row is None else row["setting"]
    if not slow:
        selected[base_name] = base_setting       # the production operating point itself, not tuned
    rows, cut = {}, {}
    for name, setting in selected.items():
        if setting is None:
            rows[name] = {"setting": None, "note": f"no setting reaches the dev EP90 budget of {budget:.0f} ms"}
            continue
        out = score(variant_endpointer(name, setting, probs, max_wait_ms, variants), test)
        cut[name] = [o.cut_off for o in out]
        rows[name] = {"setting": setting, **summarize(out), "ci": outcome_cis(out, seed)}
    vs = {}
    for name in cut:
        if name != base_name and base_name in cut:
            d = paired_diff_ci(cut[name], cut[base_name], seed=seed)
            b = rows[base_name].get("cutoff_rate")
            vs[name] = {"cutoff_diff": d, "cutoff_ratio": (rows[name]["cutoff_rate"] / b) if b else None}
    two = vs.get("two-pass", {})
    ratio = two.get("cutoff_ratio")
    return {"dev": {"n_utterances": len(dev), "budget_EP90_ms": budget, "budget_rule": rule, "baseline": list(baseline),
                    "curves": dev_cv, "selected": selected},
            "test": {"n_utterances": len(test), "rows": rows, "vs_baseline": vs,
                     "curves": curves(test, arbitrator, max_wait_ms=max_wait_ms, variants=variants)},
            "two_pass_cutoff_over_pause": ratio,
            "goal_halved": bool(ratio is not None and ratio <= 0.5),
            "goal_halved_beyond_noise": bool(ratio is not None and ratio <= 0.5 and two["cutoff_diff"]["ci95"][1] < 0)}


def per_noise_kind(signals, selected: dict, arbitrator=None, max_wait_ms: float = 1500.0, seed: int = 0) -> dict:
    """Each end-pointer at its dev-chosen setting, per kind of background (clean, white, pink, babble): how
    often it fires at all before the recording ends (the EOU token may never come in noise), its cut-off rate
    and EP50/EP90 with 95 % intervals."""
    from ..stats import rate_ci
    from .endpointers import score
    from .metrics import outcome_cis
    probs = None
    if arbitrator is not None:
        from .arbitrator import ArbitratorProbs
        probs = ArbitratorProbs(arbitrator)
    kinds: dict = {}
    for s in signals:
        kinds.setdefault(s.noise or "clean", []).append(s)
    out = {}
    for name, setting in selected.items():
        if setting is None:
            continue
        ep = make_endpointer(name, setting, probs, max_wait_ms)
        out[name] = {}
        for kind, sigs in sorted(kinds.items()):
            o = score(ep, sigs)
            out[name][kind] = {"n": len(o), "fired": rate_ci(sum(x.endpoint is not None for x in o), len(o)),
                               **outcome_cis(o, seed)}
    return out


def plot_curves(cv: dict, selected: dict | None = None, ax=None, title: str = ""):
    """Every setting (light dots) and each end-pointer's Pareto front (steps: the lowest cut-off rate any
    setting reaches at that EP90 or less, the same front the comparison reads); ``selected``: the rows
    chosen on dev as scored here ({name: row with EP90_ms, cutoff_rate}), starred."""
    import matplotlib.pyplot as plt
    from .metrics import pareto_front
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.2))
    for i, (name, c) in enumerate(cv.items()):
        color = f"C{i}"
        pts = [(r["EP90_ms"], 100 * r["cutoff_rate"]) for r in c if np.isfinite(r["EP90_ms"])]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], ".", alpha=0.35, color=color)
        front = pareto_front(c)
        ax.plot([r["EP90_ms"] for r in front], [100 * r["cutoff_rate"] for r in front], "-", drawstyle="steps-post",
                color=color, label=f"{name} (front)")
        row = (selected or {}).get(name)
        if row and row.get("setting") is not None and np.isfinite(row["EP90_ms"]):
            ax.plot([row["EP90_ms"]], [100 * row["cutoff_rate"]], "*", ms=13, color=color, mec="k",
                    label=f"{name} chosen on dev: {row['setting']}")
    ax.set_xlabel("EP90 (ms after the true end of speech)")
    ax.set_ylabel("cut-off rate (%)")
    ax.set_title(title or "end-pointer trade-off")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return ax


def comparison_table(report: dict):
    """The test-split table of a ``select_and_report`` result: one row per end-pointer, with intervals."""
    import pandas as pd
    from ..stats import fmt
    rows = []
    for name, r in report["test"]["rows"].items():
        if r.get("setting") is None:
            rows.append({"end-pointer": name, "setting (chosen on dev)": None})
            continue
        ci = r["ci"]
        d = report["test"]["vs_baseline"].get(name)
        rows.append({"end-pointer": name, "setting (chosen on dev)": str(r["setting"]),
                     "cut-off rate": fmt(ci["cutoff_rate"]),
                     "EP90 (ms)": fmt(ci["EP90_ms"], 1, "", 0), "EP50 (ms)": fmt(ci["EP50_ms"], 1, "", 0),
                     "vs pause (cut-off, points)": "" if d is None else
                     (f"{100 * d['cutoff_diff']['value']:+.1f} [{100 * d['cutoff_diff']['ci95'][0]:+.1f}, "
                      f"{100 * d['cutoff_diff']['ci95'][1]:+.1f}]" + (" within noise" if d["cutoff_diff"]["within_noise"] else ""))})
    return pd.DataFrame(rows)
