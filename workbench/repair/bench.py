"""``python -m workbench bench repair``: the parser and the repair measured on text and through the ASR.

Sets (every gold graph from the corpus entry's template, so the truth is known by construction):
- ``text``: the test split's reference texts (the corpus's own cuts) and the complete counterparts of the cut ones;
- ``text, every cut``: every test sentence cut after each of its words (as the corpus cuts) beside the whole
  sentence: the many cuts a rate needs;
- ``held-out templates``: the same on ``test_unseen_text`` (templates the parser never saw);
- ``ASR``/``ASR, held-out templates``: the recogniser's transcripts of the same audio (beam 8, the domain-LM
  reranker the widgets apply), against the references' gold graphs.
Detection is selected on dev (the cut head, the graph's own evidence, or either) and reported on test.
"""
from __future__ import annotations

import time
from pathlib import Path
from .acoustic import p_end_after_speech
from .evaluation import FUSED_RULE, GOALS, fit_fused, asr_texts, choose_rule, detection, evaluate, every_cut, headline, latency, out_of_domain, plot, recovery, role_ceiling, with_counterparts


def run(parser_path=None, corpus=None, asr: bool = True, n: int | None = None, out_dir=None, results_dir=None,
        threads: int = 2, asr_model=None, endpoint: bool = True, seed: int = 0, log=print) -> dict:
    """Every set measured, JSON ``bench_repair.json`` and its plot written; ``n``: the first n utterances of each
    split (all by default); ``asr``: also through the recogniser (decodes the audio once, then cached);
    ``endpoint``: the two-pass end-pointer consulting the parser (``endpointing.tie_in``)."""
    import torch
    from ..data import ensure_corpus, open_dataset
    from ..results import repo_path, save_bench
    from .parser import DEFAULT, load_parser
    t0 = time.time()
    torch.set_num_threads(threads)
    corpus = Path(corpus or ensure_corpus("default"))
    parser = load_parser(parser_path, device="cpu")
    split = {s: open_dataset(corpus, s).entries[:n] for s in ("dev", "test", "test_unseen_text")}
    dev_parses = parser.parse_batch([e["text"] for e in split["dev"]])
    dev_truth = [bool(e.get("truncated")) for e in split["dev"]]
    rule = choose_rule(dev_parses, dev_truth)
    log(f"detection rule chosen on dev: {rule}")
    from .syntax import SyntaxBaseline
    syntax = SyntaxBaseline()
    syntax.choose_rules([e["text"] for e in split["dev"]], dev_truth)
    log(f"spaCy baseline rules chosen on dev: {', '.join(syntax.rules)}")
    sets = {"text": (with_counterparts(split["test"]), None),
            "text, every cut": (every_cut(split["test"]), None),
            "held-out templates": (with_counterparts(split["test_unseen_text"]), None),
            "held-out templates, every cut": (every_cut(split["test_unseen_text"]), None)}
    asr_of = {}
    if asr:
        for name, s in (("ASR", "test"), ("ASR, held-out templates", "test_unseen_text")):
            sets[name] = (split[s], asr_texts(corpus, s, asr_model, n=n, log=log))
            asr_of[name] = s
    fused, signals = None, {}
    if asr and endpoint:       # how it was said: the streaming recogniser's outputs, the arbitrator reads them
        fused, signals, probs = fit_fused(parser, corpus, split, rule, asr_model, n, log)
    out = {}
    for name, (entries, texts) in sets.items():
        # transcripts are read at the threshold chosen on the recogniser's dev transcripts
        r, parses = evaluate(parser, entries, texts, rule, seed, threshold=parser.threshold_asr if texts else None,
                             syntax=syntax)
        r["threshold"] = parser.threshold_asr if texts else parser.threshold
        if fused is not None and name in asr_of:
            ok = [i for i, p in enumerate(parses) if p is not None]     # as evaluate counts: transcribed ones
            p_end = p_end_after_speech([signals[asr_of[name]][i] for i in ok], probs, fused.delay_s)
            pred = fused.detect([parses[i].p_cut for i in ok], p_end)
            r["detection_by_rule"][r["rule"]] = r["detection"]
            r["detection_by_rule"][FUSED_RULE] = detection(None, [bool(entries[i].get("truncated")) for i in ok],
                                                           FUSED_RULE, seed, pred=pred)
            if fused.chosen:
                r["rule"], r["detection"] = FUSED_RULE, r["detection_by_rule"].pop(FUSED_RULE)
        r["recovery"] = recovery(parser, entries, texts, seed)
        out[name] = r
        log(f"{name}: detection F1 {r['detection']['f1']['value']:.3f}, missing role {r['missing_role_first']['value']:.3f}"
            f", smatch partial {r['smatch_partial']['value']:.3f}, recovery {r['recovery']['dialogue context']['value']:.3f}")
    if "text, every cut" in out:
        out["text, every cut"]["missing_role_ceiling"] = role_ceiling(sets["text, every cut"][0], seed=seed)
        log(f"owed role, ceiling of any reader of the words said: "
            f"{out['text, every cut']['missing_role_ceiling']['ceiling']['value']:.3f}")
    ood = out_of_domain(parser, {"test": [e["text"] for e in split["test"]],
                                 "held-out templates": [e["text"] for e in split["test_unseen_text"]]}, seed)
    lat = latency(parser.parse, [e["text"] for e in split["test"]])
    lat_syntax = latency(lambda t: syntax.detect([t]), [e["text"] for e in split["test"]])
    ep = None
    if endpoint:
        from .endpointing import tie_in
        ep = tie_in(parser, n=n or 500, n_dev=min(n or 300, 300), seed=seed, log=log,
                    signals=(signals["dev"], signals["test"]) if signals else None)
        log(f"end-pointing: chosen {ep['chosen_on_dev']}, vs two-pass {ep['parser_vs_two_pass_cutoff']}")
    result = {"parser": repo_path(parser.path or DEFAULT), "corpus": repo_path(corpus), "threads": threads,
              "detection_rule": rule, "threshold": parser.threshold, "threshold_asr": parser.threshold_asr,
              "dev_detection": detection(dev_parses, dev_truth, rule),
              "syntax_baseline": {"model": syntax.model, "rules_chosen_on_dev": list(syntax.rules),
                                  "latency_ms": lat_syntax},
              "fused_cut_detector": fused.to_dict() if fused else None,
              "sets": out, "out_of_domain": ood, "latency_ms": lat, "endpointing": ep, "goals": GOALS, "wall_s": round(time.time() - t0, 1)}
    result["headline"] = headline(result)
    out_dir = Path(out_dir or Path("reports") / "bench" / time.strftime("%Y-%m-%d"))
    save_bench(out_dir, "bench_repair", result, {"repair.png": plot(result)}, results_dir)
    result["out_dir"] = str(out_dir)
    return result
