"""``python -m workbench bench batching``: how many live streams one device sustains in real time, batched
against stepped one at a time, measured side by side in one run.

Load: N concurrent streams replayed from the corpus (each slot plays test utterances back to back, a new
stream each, staggered starts), 30 ms frames on a **virtual clock**: frames arrive on schedule, and every
step occupies the device for the time it really took on this machine (the real model, really run). So
the run takes as long as the compute, not as long as the audio, and a saturated device shows up as a
growing queue exactly as it would live. The VAD runs in front of the device (probabilities computed
beforehand per utterance, replayed), and the feature front end is timed separately.

Three configurations, side by side in one run: the batched engine (features and encoder step once per batch);
the seed's per-stream CPU baseline (each 30 ms frame's features as it arrives, each chunk stepped alone); and,
to separate the two effects, each chunk stepped alone with its features computed once per chunk.
Measured per configuration:
added latency per chunk (chunk complete -> its result; p50/p95/p99), device busy fraction, batch fill;
the largest N with p95 added latency <= the budget (100 ms), and the device (on a CPU: the steps plus the
feature front end, which share its cores) busy less than the wall time, is "sustained in real time". End of speech:
time from the true end of speech to the final result with the pause flush, and without it (the first
result that has decoded the audio up to the point the pause was detected).
"""
from __future__ import annotations

import time
from pathlib import Path

from .engine import BatchPolicy
from .simulation import configurations, load_utterances, plot, simulate, step_time_by_batch, sustained_interleaved

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "bench_batching.json"


def run(model_path=None, out_dir=None, corpus_size: str = "default", split: str = "test", n_utts: int = 40,
        target_batch: int = 16, max_wait_ms: float = 40.0, pause_ms: float = 300.0, duration_s: float = 20.0,
        context=(70, 1), device: str | None = None, grid=(1, 2, 4, 8, 16, 32, 64, 128),
        latency_budget_ms: float = 100.0, repeats: int = 3, nemo_peer: bool = True, results_dir=None) -> dict:
    """The whole benchmark; returns the result and writes ``bench_batching.json`` + ``batching.png``."""
    import matplotlib
    matplotlib.use("Agg")
    from ..results import save_bench
    import torch
    from ..asr.recipe import default_recognizer
    rec, path, shipped = default_recognizer(model_path, context, device)
    out_dir = Path(out_dir or Path("reports") / "bench" / time.strftime("%Y-%m-%d"))
    t0 = time.time()
    utts = load_utterances(corpus_size, split, n_utts)
    configs = configurations(target_batch, max_wait_ms, pause_ms)
    batched = configs["batched"]
    kw = {"duration_s": duration_s, "latency_budget_ms": latency_budget_ms}
    runners = {name: (lambda n, seed=0, pol=pol: simulate(rec, utts, n, pol, seed=seed, **kw))
               for name, pol in configs.items()}
    if nemo_peer:
        from .nemo_peer import peer_runner
        runners["nemo_pipeline"] = peer_runner(rec, utts, path, duration_s=duration_s, target_batch=target_batch,
                                               max_wait_ms=max_wait_ms, latency_budget_ms=latency_budget_ms)
    found = sustained_interleaved(runners, grid, repeats, latency_budget_ms)
    n_single = found["single"]["sustained_streams"]
    n_single_chunk = found["single_chunk_front_end"]["sustained_streams"]
    n_batched, runs_batched = found["batched"]["sustained_streams"], found["batched"]["runs"]
    # end of speech at the batched configuration's sustained load: with and without the flush
    n_eos = max(1, n_batched)
    with_flush = next(r for r in runs_batched if r["streams"] == n_eos) if n_batched else simulate(rec, utts, 1, batched, **kw)
    no_flush = simulate(rec, utts, n_eos, BatchPolicy(target_batch, max_wait_ms, None), **kw)
    result = {
        "model": str(path), "shipped_model": shipped, "context": list(rec.att_context),
        "chunk_ms": rec.chunk_s * 1000, "device": str(rec.device), "torch_threads": torch.get_num_threads(),
        "policy": {"target_batch": target_batch, "max_wait_ms": max_wait_ms, "pause_ms": pause_ms},
        "latency_budget_ms": latency_budget_ms, "duration_s": duration_s, "utterances": len(utts),
        "repeats": repeats, "interleaved": True,
        "single": {**found["single"], "front_end": "per frame"},
        "single_chunk_front_end": {**found["single_chunk_front_end"], "front_end": "per chunk"},
        "batched": {**found["batched"], "front_end": "per batch"},
        **({"batched_no_flush": {**found["batched_no_flush"], "front_end": "per batch", "pause_flush": False}}
           if "batched_no_flush" in found else {}),
        "ratio": (n_batched / n_single) if n_single else None,      # None: the baseline sustains no stream
        "ratio_spread": [(found["batched"]["sustained_worst"] / found["single"]["sustained_best"])
                         if found["single"]["sustained_best"] else None,
                         (found["batched"]["sustained_best"] / found["single"]["sustained_worst"])
                         if found["single"]["sustained_worst"] else None],
        "ratio_vs_single_chunk_front_end": (n_batched / n_single_chunk) if n_single_chunk else None,
        "end_of_speech": {"streams": n_eos,
                          "eos_to_final_ms_flush": with_flush.get("eos_to_final_ms_flush"),
                          "detect_to_final_ms_flush": with_flush.get("detect_to_final_ms_flush"),
                          "eos_to_final_ms_no_flush": no_flush.get("eos_to_final_ms_no_flush")},
        "step_time_by_batch": step_time_by_batch(rec, utts),
        "wall_s": None}
    d = result["end_of_speech"]["detect_to_final_ms_flush"]
    result["flush_within_one_chunk"] = bool(d and d["p95"] <= result["chunk_ms"])
    goal = 20.0 if result["device"].startswith("cuda") else 3.0
    result["targets"] = {"ratio_goal": goal, "ratio_met": bool(result["ratio"] is not None and result["ratio"] >= goal)}
    result["wall_s"] = round(time.time() - t0, 1)
    if "nemo_pipeline" in found:
        peer = found["nemo_pipeline"]
        result["nemo_pipeline"] = {**peer, **{k: v for k, v in runners["nemo_pipeline"].info.items()}}
        mine = found.get("batched_no_flush", found["batched"])["sustained_streams"]     # neither flushes
        result["ratio_vs_nemo_pipeline"] = (mine / peer["sustained_streams"]) if peer["sustained_streams"] else None
        result["targets"]["ahead_of_nemo_pipeline"] = bool(mine > peer["sustained_streams"])
    save_bench(out_dir, "bench_batching", result, {"batching.png": plot(result)}, results_dir)
    result["out_dir"] = str(out_dir)
    return result
