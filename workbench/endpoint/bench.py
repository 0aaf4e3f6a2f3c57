"""``python -m workbench train-arbitrator`` and ``python -m workbench bench endpoint``.

The bench compares the three end-pointers with the field's metrics, **selected on dev, reported on test**:
on the dev split each end-pointer's settings are swept into a trade-off curve (cut-off rate against EP90) and
the setting on its Pareto front within the pause baseline's EP90 (silero-vad at 500 ms, a common production
operating point) is chosen; those settings are then run once on the test split and reported with 95 %
intervals, with the paired difference of cut-off rates against the baseline. The test curves are drawn for
reading, never used to choose. Goal (the issue's): the two-pass end-pointer at most half the pause baseline's
cut-off rate at equal EP90. Every figure is measured in the run that prints it.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..asr.recipe import default_recognizer
from .arbitrator import ARBITRATOR_DIR, load
from .evaluation import per_noise_kind, plot_curves, select_and_report
from .signals import split_signals


def run(model_path=None, arbitrator_path=None, corpus_size: str = "default", split: str = "test", n: int = 500,
        n_dev: int = 300, context=(70, 1), out_dir=None, device=None, results_dir=None) -> dict:
    """Dev selection, test report, for the whole split and for its utterances without background noise (in
    babble the VAD may hear "speech" for the whole continuation, so ~10 % of the split never end-points and
    the whole-split EP90 sits at the recording's cap for every setting)."""
    import matplotlib
    matplotlib.use("Agg")
    from ..results import save_bench
    t0 = time.time()
    rec, path, shipped = default_recognizer(model_path, context, device)
    arb_path = Path(arbitrator_path or ARBITRATOR_DIR)
    arb = load(arb_path) if (arb_path / "arbitrator.pt").exists() or arb_path.is_file() else None
    dev = split_signals(rec, corpus_size, "dev", n_dev)
    test = split_signals(rec, corpus_size, split, n)
    everything = select_and_report(dev, test, arb)
    quiet = select_and_report([s for s in dev if not s.noise], [s for s in test if not s.noise], arb)
    result = {"asr_model": str(path), "asr_model_shipped": shipped, "arbitrator": str(arb_path) if arb else None,
              "context": list(rec.att_context), "split": split, "select_split": "dev",
              "n_utterances": len(test), "n_dev_utterances": len(dev),
              "n_with_pauses": sum(bool(s.pauses) for s in test), "n_truncated": sum(s.truncated for s in test),
              "n_noisy": sum(bool(s.noise) for s in test), "all": everything, "quiet": quiet,
              "by_noise": per_noise_kind(test, everything["dev"]["selected"], arb), "wall_s": None}
    result["wall_s"] = round(time.time() - t0, 1)
    out_dir = Path(out_dir or Path("reports") / "bench" / time.strftime("%Y-%m-%d"))
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), squeeze=False)
    for ax, (key, rep) in zip(axes[0], (("all", everything), ("quiet", quiet))):
        plot_curves(rep["test"]["curves"], rep["test"]["rows"], ax=ax,
                    title=f"{split}, {'all' if key == 'all' else 'without background noise'}: "
                          f"{rep['test']['n_utterances']} utterances (stars: chosen on dev)")
    fig.tight_layout()
    save_bench(out_dir, "bench_endpoint", result, {"endpoint_tradeoff.png": fig}, results_dir)
    result["out_dir"] = str(out_dir)
    return result
