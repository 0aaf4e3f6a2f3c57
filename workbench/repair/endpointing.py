"""The end-pointer consults the parser: a request whose graph is cut argues for waiting longer.

The two-pass end-pointer's arbitrator gives P(end of speech) after every recogniser step, from the encoder output
and the partial transcript. Here the parser reads the same partial transcript: where it says the request is cut
("set a timer for", a pause mid-request), the arbitrator's probability is lowered, ``p * (1 - w * p_cut)``, so
the proposal is deferred (never beyond the two-pass end-pointer's own maximum wait). Whether that lowers the
cut-off rate at an equal EP90 is measured like every end-pointer: settings chosen on dev at the baseline's EP90,
cut-off rate reported on test (the quiet subset: in babble the VAD never proposes), paired against the two-pass
end-pointer alone.
"""
from __future__ import annotations

import numpy as np

WEIGHTS = (0.5, 1.0)
# the longest a proposal waits for the parser: a request that really ended cut off ("set a timer for" and silence)
# is waited on too, so a long wait costs latency on every such request
MAX_WAITS_MS = (300.0, 600.0, 1000.0)


def partial_texts(signals, tokenizer) -> list[list[str]]:
    """Each utterance's partial transcript after each recogniser step (the ASR's own tokens, detokenised)."""
    vocab = int(tokenizer.vocab_size)
    return [[tokenizer.ids_to_text([t for t in toks if t < vocab]).strip() if toks else "" for toks in s.tokens]
            for s in signals]


def step_p_cut(parser, texts: list[list[str]], batch: int = 128) -> list[np.ndarray]:
    """The parser's P(cut) of every partial transcript (0 where nothing has been said yet), each distinct text
    parsed once."""
    distinct = sorted({t for ts in texts for t in ts if t.split()})
    p = {}
    for b in range(0, len(distinct), batch):
        chunk = distinct[b:b + batch]
        try:
            parses = parser.parse_batch(chunk)
        except ValueError:                            # an over-long partial: read one by one, 0 where it fails
            parses = []
            for t in chunk:
                try:
                    parses.append(parser.parse(t))
                except ValueError:
                    parses.append(None)
        p.update({t: (q.p_cut if q is not None else 0.0) for t, q in zip(chunk, parses)})
    return [np.array([p.get(t, 0.0) for t in ts], np.float32) for ts in texts]


class ParserGate:
    """Wraps an arbitrator's per-step probabilities: ``p * (1 - weight * p_cut)`` with the parser's P(cut) of the
    partial transcript at the same step (``p_cut``: {utt_id: per-step array})."""

    def __init__(self, probs, p_cut: dict, weight: float):
        self.probs, self.p_cut, self.weight = probs, p_cut, weight

    def __call__(self, s) -> np.ndarray:
        p = np.asarray(self.probs(s), np.float32)
        q = self.p_cut.get(s.utt_id)
        if q is None or len(q) != len(p):
            return p
        return p * (1.0 - self.weight * q)


def variants(parser, signals_sets, tokenizer, weights=WEIGHTS, max_waits=MAX_WAITS_MS) -> dict:
    """``endpoint.evaluation`` variants: "two-pass + parser (w, wait)" for each weight and maximum wait, over the
    given signal sets."""
    p_cut = {}
    for signals in signals_sets:
        for s, q in zip(signals, step_p_cut(parser, partial_texts(signals, tokenizer))):
            p_cut[s.utt_id] = q
    return {f"two-pass + parser (w {w:g}, wait {m:.0f} ms)": ((lambda probs, w=w: ParserGate(probs, p_cut, w)), m)
            for w in weights for m in max_waits}


def tie_in(parser, corpus_size: str = "default", n: int = 500, n_dev: int = 300, context=(70, 1), seed: int = 0,
           log=print, signals=None) -> dict:
    """The end-pointers of ``bench endpoint`` beside the two-pass end-pointer consulting the parser, selected on
    dev and reported on test, quiet subset (no background noise); ``signals``: (dev, test) already computed
    with the recogniser at ``context``."""
    from ..endpoint.arbitrator import load
    from ..endpoint.arbitrator import ARBITRATOR_DIR
    from ..endpoint.evaluation import BASELINE, curves, select_and_report
    from ..endpoint.signals import split_signals
    from ..asr.recipe import default_recognizer
    rec, path, _ = default_recognizer(None, context)
    arb = load(ARBITRATOR_DIR)
    dev, test = signals or (split_signals(rec, corpus_size, "dev", n_dev), split_signals(rec, corpus_size, "test", n))
    dev, test = [s for s in dev[:n_dev] if not s.noise], [s for s in test[:n] if not s.noise]
    log(f"end-pointing: {len(dev)} quiet dev / {len(test)} quiet test utterances")
    var = variants(parser, [dev, test], rec.tokenizer)
    # a variant that cannot end-point within the budget the other end-pointers are compared at (the production
    # pause's dev EP90, or the smallest every one of them reaches) is reported, not compared: kept in, it would
    # raise everyone's budget to its own
    dev_cv = curves(dev, arb, variants=var)
    fastest = {v: min((r["EP90_ms"] for r in c if np.isfinite(r["EP90_ms"])), default=np.inf) for v, c in dev_cv.items()}
    budget = next(r["EP90_ms"] for r in dev_cv[BASELINE[0]] if r["setting"] == BASELINE[1])
    budget = max([budget] + [f for v, f in fastest.items() if v not in var and np.isfinite(f)])
    unreachable = {v: round(float(fastest[v]), 1) for v in var if fastest[v] > budget}
    var = {v: m for v, m in var.items() if v not in unreachable}
    rep = select_and_report(dev, test, arb, variants=var, seed=seed)
    rows = rep["test"]["rows"]
    names = [v for v in var if rows.get(v, {}).get("setting") is not None]
    dev_cut = {v: next((r["cutoff_rate"] for r in rep["dev"]["curves"][v] if r["setting"] == rep["dev"]["selected"][v]),
                       np.inf) for v in names}
    chosen = min(names, key=lambda v: dev_cut[v]) if names else None
    vs_two = None
    if chosen and rows.get("two-pass", {}).get("setting") is not None:
        from ..endpoint.endpointers import score
        from ..endpoint.evaluation import variant_endpointer
        from ..endpoint.arbitrator import ArbitratorProbs
        from ..stats import paired_diff_ci
        probs = ArbitratorProbs(arb)
        a = [o.cut_off for o in score(variant_endpointer(chosen, rows[chosen]["setting"], probs, 1500.0, var), test)]
        b = [o.cut_off for o in score(variant_endpointer("two-pass", rows["two-pass"]["setting"], probs, 1500.0, var), test)]
        vs_two = paired_diff_ci(a, b, seed=seed)
    return {"asr_model": str(path), "n_dev": len(dev), "n_test": len(test), "chosen_on_dev": chosen,
            "budget_EP90_ms": rep["dev"]["budget_EP90_ms"], "budget_rule": rep["dev"]["budget_rule"],
            "selected": rep["dev"]["selected"], "fastest_dev_EP90_ms_of_variants_left_out": unreachable,
            "test": {k: {"setting": v.get("setting"), "cutoff_rate": v.get("cutoff_rate"), "EP50_ms": v.get("EP50_ms"),
                         "EP90_ms": v.get("EP90_ms"), "ci": v.get("ci")} for k, v in rows.items()},
            "parser_vs_two_pass_cutoff": vs_two}
