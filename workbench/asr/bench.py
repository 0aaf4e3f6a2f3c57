"""``python -m workbench bench asr``: WER against algorithmic latency for every fixed lookahead and for the
dynamic-lookahead cascade, CPU real-time factor of streaming decoding, peak memory. Prints JSON, writes
JSON and plots. Every figure is measured in the run that prints it; nothing is carried over.
"""
from __future__ import annotations

import resource
import time
from pathlib import Path

import numpy as np

from ..audio import MODEL_SAMPLE_RATE

DEFAULT_LADDERS = (((70, 0), (70, 13)), ((70, 0), (70, 4), (70, 13)), ((70, 1), (70, 13)))
DEFAULT_THRESHOLDS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7)


def _wer(refs: list[str], hyps: list[str]) -> float:
    import jiwer
    return float(jiwer.wer(refs, hyps))


def fixed_points(model, audios, refs, contexts=None, batch: int = 64, subsets: dict | None = None) -> list[dict]:
    """WER and mean algorithmic latency of each trained context, decoded chunk by chunk (batched).
    ``subsets`` ({name: indices}) adds ``wer_<name>`` over those utterances, from the same decoding."""
    from .lookahead import fixed_latency_ms
    from .streaming import StreamingRecognizer, transcribe_batch
    out = []
    for ctx in contexts or [tuple(c) for c in model.encoder.att_context_size_all]:
        rec = StreamingRecognizer(model, list(ctx))
        hyps = []
        for i in range(0, len(audios), batch):
            hyps += [ev[-1].nbest[0].text for ev in transcribe_batch(rec, audios[i:i + batch])]
        out.append({"policy": f"fixed {ctx[1]}", "context": list(ctx), "wer": _wer(refs, hyps),
                    "latency_ms": fixed_latency_ms(ctx, rec.frame_s), "encoder_passes_per_frame": 1.0 / (ctx[1] + 1),
                    **{f"wer_{name}": _wer([refs[i] for i in idx], [hyps[i] for i in idx])
                       for name, idx in (subsets or {}).items() if idx}})
    return out


def cascades(ladders=DEFAULT_LADDERS, thresholds=DEFAULT_THRESHOLDS, score: str = "maxprob") -> list:
    """A CascadePolicy for every ladder and threshold."""
    from .lookahead import CascadePolicy
    return [CascadePolicy(ladder, threshold=t, score=score) for ladder in ladders for t in thresholds]


def dynamic_points(model, audios, refs, policies=None, batch: int = 64) -> list[dict]:
    """WER, mean latency, share of chunks that waited and encoder passes per frame, for each policy
    (default: ``cascades()``; any CascadePolicy subclass works)."""
    from .lookahead import DynamicLookaheadRecognizer, mean_latency_ms, transcribe_dynamic
    out = []
    for policy in policies or cascades():
        rec = DynamicLookaheadRecognizer(model, policy)
        hyps, decisions = [], []
        for i in range(0, len(audios), batch):
            h, d = transcribe_dynamic(rec, audios[i:i + batch])
            hyps += h
            decisions += d
        flat = [d for dec in decisions for d in dec]
        ladder = policy.ladder
        out.append({"policy": policy.name, "ladder": [list(c) for c in ladder],
                    "threshold": getattr(policy, "threshold", None),
                    "wer": _wer(refs, hyps), "latency_ms": mean_latency_ms(flat, rec.frame_s),
                    "share_waited": float(np.mean([d.context != ladder[0] for d in flat])),
                    "encoder_passes_per_frame": (sum(len(d.probes) + 1 for d in flat)
                                                 / max(1, sum(d.frames for d in flat)))})
    return out


def interpolate_fixed(fixed: list[dict], latency_ms: float) -> float:
    """WER of the fixed-lookahead front at ``latency_ms`` (piecewise linear between the trained contexts;
    outside their range, the nearest one)."""
    pts = sorted((p["latency_ms"], p["wer"]) for p in fixed)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return float(np.interp(latency_ms, xs, ys))


def goals(fixed: list[dict], dynamic: list[dict]) -> dict:
    """The issue's two goals, measured: (a) a dynamic point below the fixed front at its own latency;
    (b) a dynamic point at most as many errors as the largest fixed lookahead with >= 30 % less latency."""
    best_fixed = min(fixed, key=lambda p: (p["wer"], p["latency_ms"]))
    largest = max(fixed, key=lambda p: p["latency_ms"])
    gains = [(interpolate_fixed(fixed, d["latency_ms"]) - d["wer"], d) for d in dynamic]
    gain, at = max(gains, key=lambda g: g[0]) if gains else (float("nan"), None)
    as_good = [d for d in dynamic if d["wer"] <= largest["wer"]]
    cheapest = min(as_good, key=lambda d: d["latency_ms"]) if as_good else None
    saving = 1 - cheapest["latency_ms"] / largest["latency_ms"] if cheapest else None
    return {"best_fixed": best_fixed["policy"],
            "max_wer_gain_over_fixed_front": gain, "at": at and at["policy"],
            "below_fixed_front": bool(gain > 0),
            "largest_fixed": largest["policy"], "largest_fixed_wer": largest["wer"],
            "cheapest_dynamic_as_good_as_largest": cheapest and cheapest["policy"],
            "latency_saving_at_equal_wer": saving,
            "saving_goal_met": bool(saving is not None and saving >= 0.30)}


def streaming_rtf(model, audios, contexts=((70, 0), (70, 13)), frame_ms: int = 30) -> dict:
    """Wall time per second of audio for one stream fed ``frame_ms`` frames through the recogniser
    (features, encoder step, greedy RNNT), on whatever device the model is on."""
    from .streaming import StreamingRecognizer, transcribe_streaming
    out = {}
    total = sum(len(a) for a in audios) / MODEL_SAMPLE_RATE
    for ctx in contexts:
        rec = StreamingRecognizer(model, list(ctx))
        transcribe_streaming(rec, audios[0][:MODEL_SAMPLE_RATE], frame_ms)     # warm-up
        t0 = time.perf_counter()
        for a in audios:
            transcribe_streaming(rec, a, frame_ms)
        out[str(list(ctx))] = (time.perf_counter() - t0) / total
    return out


def plot_front(fixed: list[dict], dynamic: list[dict], ax=None, title: str | None = None,
               others: dict | None = None):
    """WER against mean algorithmic latency: the fixed lookaheads as a line, each ladder as a curve, and
    ``others`` ({label: {"latency_ms", "wer"}}, e.g. the ESPnet backend on the same utterances) as points."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.2))
    f = sorted(fixed, key=lambda p: p["latency_ms"])
    ax.plot([p["latency_ms"] for p in f], [100 * p["wer"] for p in f], "ko-", lw=2, label="fixed lookahead")
    for p in f:
        ax.annotate(f"[{p['context'][0]},{p['context'][1]}]", (p["latency_ms"], 100 * p["wer"]),
                    textcoords="offset points", xytext=(4, 4), fontsize=8)
    curves: dict = {}
    for d in dynamic:     # one curve per policy family (name without its threshold)
        curves.setdefault(d["policy"].rsplit(" @", 1)[0], []).append(d)
    for name, pts in curves.items():
        pts = sorted(pts, key=lambda p: p["latency_ms"])
        ax.plot([p["latency_ms"] for p in pts], [100 * p["wer"] for p in pts], ".--", label=name)
    for label, p in (others or {}).items():
        ax.plot([p["latency_ms"]], [100 * p["wer"]], "s", ms=8, label=label)
    ax.set_xlabel("mean algorithmic latency per frame (ms)")
    ax.set_ylabel("WER (%)")
    ax.set_title(title or "WER against latency: fixed and dynamic lookahead")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def run(model_path=None, n: int = 200, split: str = "test", out_dir=None, corpus_size: str = "default",
        ladders=DEFAULT_LADDERS, thresholds=DEFAULT_THRESHOLDS, rtf_n: int = 10, device: str | None = None,
        espnet_dir=None) -> dict:
    """The whole ASR benchmark; returns the result dict and writes ``bench_asr.json`` + ``front.png``.

    When an ESPnet export is present (``espnet_dir``, default ``data/models/asr_espnet_small``), the same
    utterances are decoded by it chunk by chunk (30 ms frames, beam 4), so both backends' WER and RTF sit
    side by side in one run."""
    import matplotlib
    matplotlib.use("Agg")
    from ..reports import save_bench
    import torch
    from ..data import ensure_corpus, is_clean, open_dataset
    from .streaming import load_model
    from .recipe import MODELS
    model_path = Path(model_path or MODELS / "asr_small" / "model.nemo")
    out_dir = Path(out_dir or Path("reports") / "bench" / time.strftime("%Y-%m-%d"))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = load_model(model_path, device=device)
    ds = open_dataset(ensure_corpus(corpus_size), split)
    idx = list(range(min(n, len(ds))))
    entries = [ds.entries[i] for i in idx]
    audios = [ds.audio(i) for i in idx]
    refs = [e["text"] for e in entries]
    t0 = time.time()
    clean = [i for i, e in enumerate(entries) if is_clean(e)]   # the bar: clean speech
    fixed = fixed_points(model, audios, refs, subsets={"clean": clean})
    dynamic = dynamic_points(model, audios, refs, cascades(ladders, thresholds))
    result = {"model": str(model_path), "split": split, "n_utterances": len(entries), "n_clean": len(clean),
              "audio_s": round(sum(len(a) for a in audios) / MODEL_SAMPLE_RATE, 1),
              "device": str(next(model.parameters()).device), "torch_threads": torch.get_num_threads(),
              "fixed": fixed, "dynamic": dynamic, "goals": goals(fixed, dynamic),
              "rtf_streaming_30ms_frames": streaming_rtf(model, audios[:rtf_n]),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
              "rss_before_model_mb": round(rss0 / 1024, 1), "wall_s": round(time.time() - t0, 1)}
    espnet_dir = Path(espnet_dir or MODELS / "asr_espnet_small")
    if (espnet_dir / "model.pth").is_file():
        from .espnet_backend import EspnetStreamingRecognizer, evaluate_streaming
        esp = EspnetStreamingRecognizer.from_pretrained(espnet_dir, beam_size=4, nbest=1, device=device)
        result["espnet"] = {"model": str(espnet_dir), "decoding": "contextual block, 30 ms frames, beam 4",
                            **evaluate_streaming(esp, entries)}
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    others = {"ESPnet contextual block (beam 4)": result["espnet"]} if "espnet" in result else None
    ax = plot_front(fixed, dynamic, title=f"{split} split, {len(entries)} utterances ({model_path.parent.name})",
                    others=others)
    save_bench(out_dir, "bench_asr", result, {"asr_front.png": ax.figure})
    result["out_dir"] = str(out_dir)
    return result
