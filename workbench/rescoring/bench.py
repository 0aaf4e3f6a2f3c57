"""``python -m workbench bench rescoring``: every reranker over the same n-best lists, one accounting.

The lists: the shipped recogniser's beam (8) at its largest lookahead, on dev (where weights are tuned), the
held-out-speaker test split and the unseen-text and unseen-engine splits. The systems: the beam's 1-best, the
word bonus alone (no LM), the domain LM and SmolLM2 zero-shot (log-linear, lambda and beta tuned on dev), the
MWER fine-tuned SmolLM2 (its own trained weights), and the oracle (the floor of any reranker). Per system and
set: WER (95 % bootstrap interval), the relative change against the 1-best and the share of the oracle gap
recovered (paired bootstrap over utterances), and the added latency per utterance (p50/p95 ms): each list goes
through the reranker alone, as a finished stream's ``Final`` would, timed around that call.
"""
from __future__ import annotations

import time
from pathlib import Path
from .evaluation import SETS, build_rerankers, fast_variant, headline, plot, score_set


def run(asr_model=None, corpus=None, n: int | None = None, n_dev: int | None = None, beam: int = 8,
        context=(70, 13), lms: dict | None = None, finetuned_path=None, out_dir=None, results_dir=None,
        sets: dict | None = None, cache_dir=None, fast: bool = True, log=print) -> dict:
    """Decode (or read cached) n-best lists, tune on dev, score every reranker on every set, write
    ``bench_rescoring.json`` and the plot. ``lms``: {name: (CausalLM, context)} (default: the shipped domain LM
    and SmolLM2 zero-shot); ``finetuned_path``: the MWER reranker (default ``data/models/reranker_mwer``, left
    out when absent); ``fast``: the same reranker again in bfloat16 with the LM reading only the top-k
    hypotheses (k chosen on dev, ``fast_variant``)."""
    import matplotlib
    matplotlib.use("Agg")
    from ..asr.recipe import MODELS as ASR_MODELS
    from ..data import ensure_corpus
    from ..results import repo_path, save_bench
    from .mwer import MODELS, load_mwer_reranker
    from .nbest import nbest_set
    t0 = time.time()
    corpus = Path(corpus or ensure_corpus("default"))
    asr_model = Path(asr_model or ASR_MODELS / "asr_small" / "model.nemo")
    sets = SETS if sets is None else sets
    dev = nbest_set(asr_model, corpus, "dev", n_dev, beam, context, cache_dir=cache_dir)
    lists = {name: nbest_set(asr_model, corpus, split, n, beam, context, cache_dir=cache_dir)
             for name, split in sets.items()}
    if lms is None:
        from ..lm import SMOLLM2, load_causal_lm
        from ..lm.domain import load_domain_lm
        dom = load_domain_lm()
        lms = {f"domain LM ({dom.n_params / 1e6:.1f} M), log-linear": (dom, ""),
               "SmolLM2-135M zero-shot, log-linear": (load_causal_lm(SMOLLM2), "")}
    ft_path = Path(finetuned_path or MODELS / "reranker_mwer")
    finetuned = None
    if (ft_path / "reranker.json").is_file():
        import json
        ft = load_mwer_reranker(ft_path)
        meta = json.loads((ft_path / "reranker.json").read_text())
        base = "SmolLM2-135M" if "smollm2" in ft.lm.name.lower() else Path(ft.lm.name.split("+")[0]).name
        head = " + score head" if meta.get("scorer") == "head" else ""
        finetuned = (f"{base} + LoRA{head}, MWER fine-tuned", ft, meta)
    rerankers, how = build_rerankers(dev, lms, finetuned, log)
    if finetuned is not None and fast:
        name, rr, h = fast_variant(ft_path, dev, log)
        rerankers[name], how[name] = rr, {**how[finetuned[0]], **h}
    result = {"asr_model": repo_path(asr_model), "corpus": repo_path(corpus), "beam": beam, "att_context": list(context),
              "tuned_on": f"dev ({len(dev)} utterances)", "systems": how, "sets": {}}
    for name, ns in lists.items():
        result["sets"][name] = score_set(ns, rerankers)
        if log:
            r = result["sets"][name]
            log(f"{name}: " + ", ".join(f"{k} {100 * v['wer']['value']:.1f} %" for k, v in r["systems"].items())
                + f", oracle {100 * r['oracle']['wer']['value']:.1f} %")
    result["headline"] = headline(result) if "test" in result["sets"] else None
    fast_name = next((n for n in rerankers if n.startswith("the same,")), None)
    if fast_name and "test" in result["sets"]:
        result["headline_fast"] = headline(result, fast_name)
    result["wall_s"] = round(time.time() - t0, 1)
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(11, 4.2))
    plot(result, ax)
    fig.tight_layout()
    out_dir = Path(out_dir or Path("reports") / "bench" / time.strftime("%Y-%m-%d"))
    save_bench(out_dir, "bench_rescoring", result, {"rescoring.png": fig}, results_dir)
    result["out_dir"] = str(out_dir)
    return result
