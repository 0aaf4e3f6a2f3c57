"""Live streams on a virtual clock: the load simulation behind ``bench batching``, notebook 01 and exercise 01.

N concurrent streams replayed from the corpus, 30 ms frames arriving on schedule, every device step costing
the time it really took on this machine (the real model, really run): a saturated device shows up as a
growing queue exactly as it would live. ``simulate`` runs one load, ``sustained``/``sustained_interleaved``
search the largest N in real time, ``headline`` reads the figures the README quotes off a bench result.
"""
from __future__ import annotations

import heapq
import time
from pathlib import Path

import numpy as np

from ..audio import MODEL_SAMPLE_RATE
from ..events import Final, Partial
from .engine import BatchPolicy, FrameBatcher, ScriptedPause, silero_probs

FRAME_S = 0.03


def load_utterances(corpus_size: str = "default", split: str = "test", n: int = 40) -> list[dict]:
    """Test utterances with their audio, true end of speech and silero-vad probabilities."""
    from ..data import ensure_corpus, open_dataset, require_fields
    ds = open_dataset(ensure_corpus(corpus_size) if corpus_size in ("smoke", "default", "large") else corpus_size,
                      split)
    require_fields(ds.entries[:n], ("speech_end",), "the batching bench (end-of-speech latency)")
    out = []
    for i in range(min(n, len(ds))):
        a = ds.audio(i)
        probs, hop = silero_probs(a)
        out.append({"audio": a, "speech_end": float(ds.entries[i]["speech_end"]), "probs": probs, "hop": hop,
                    "text": ds.entries[i]["text"]})
    return out


def load_schedule(utts: list[dict], n_streams: int, duration_s: float, stagger_s: float, rng):
    """The bench's load, shared by every configuration and by NeMo's pipeline: each slot plays utterances
    back to back from a staggered start until ``duration_s``. Yields (stream id, start s, utterance, 30 ms
    frames)."""
    for slot in range(n_streams):
        t, j = float(rng.uniform(0, stagger_s)), 0
        while t < duration_s:
            u = utts[int(rng.integers(len(utts)))]
            n = int(np.ceil(len(u["audio"]) / (FRAME_S * MODEL_SAMPLE_RATE)))
            yield f"{slot}-{j}", t, u, n
            t += n * FRAME_S
            j += 1


def _timer(device) -> callable:
    if str(device).startswith("cuda"):
        import torch

        def t():
            torch.cuda.synchronize()
            return time.perf_counter()
        return t
    return time.perf_counter


def simulate(rec, utts: list[dict], n_streams: int, policy: BatchPolicy, duration_s: float = 20.0,
             stagger_s: float | None = None, seed: int = 0, latency_budget_ms: float = 100.0,
             keep_steps: bool = False, engine_cls=FrameBatcher, timer=None) -> dict:
    """Replay ``n_streams`` concurrent streams for ``duration_s`` of virtual time through one engine.
    ``keep_steps`` adds every step (start, duration, streams, ready times) for timelines; ``engine_cls``
    swaps in a FrameBatcher subclass (another dispatch policy); ``timer`` is the clock the engine measures
    its work with (default: the device's wall clock; the tests pass a fake one with known costs). Every
    piece of work the engine does, the front end included in either mode, occupies the device timeline."""
    rng = np.random.default_rng(seed)
    stagger_s = FRAME_S * 40 if stagger_s is None else stagger_s
    timer = timer or _timer(rec.device)
    pause_ms = policy.pause_ms or 300.0
    meta: dict = {}

    def pauses(sid):
        m = meta[sid]
        return ScriptedPause(pause_ms, m["utt"]["probs"], m["utt"]["hop"])
    eng = engine_cls(rec, policy, pause_factory=pauses if policy.pause_ms else (lambda sid: None), timer=timer)
    # arrivals: (time, seq, slot, stream id, frame index or -1 for close)
    heap, seq = [], 0
    for sid, t, u, n in load_schedule(utts, n_streams, duration_s, stagger_s, rng):
        meta[sid] = {"utt": u, "start": t, "n": n}
        for k in range(n):
            heapq.heappush(heap, (t + (k + 1) * FRAME_S, seq, sid, k))
            seq += 1
        heapq.heappush(heap, (t + n * FRAME_S, seq, sid, -1))
        seq += 1
    # the pause each stream's detector finds (same replay), for the no-flush comparison
    for sid, m in meta.items():
        det = ScriptedPause(pause_ms, m["utt"]["probs"], m["utt"]["hop"])
        fs = int(FRAME_S * MODEL_SAMPLE_RATE)
        m["detect_k"] = next((k for k in range(m["n"])
                              if det.push(m["utt"]["audio"][k * fs:(k + 1) * fs])
                              and (k + 1) * FRAME_S >= m["utt"]["speech_end"]), None)
    free_at, n_frames = 0.0, 0
    first_cover: dict = {}       # stream -> time of the first result covering the detected pause
    flush_at: dict = {}

    def collect(events, t_end):
        for e in events:
            m = meta[e.stream_id]
            if isinstance(e, Partial):
                if m["detect_k"] is not None and e.stream_id not in first_cover \
                        and e.audio_end >= (m["detect_k"] + 1) * FRAME_S - 1e-6:
                    first_cover[e.stream_id] = t_end
            elif isinstance(e, Final) and e.reason == "pause" and e.stream_id not in flush_at \
                    and e.audio_end >= m["utt"]["speech_end"]:      # not a pause inside the sentence
                flush_at[e.stream_id] = t_end

    def collect_last(sid, t_end):     # a stream that ended before its pause was covered: its Final
        if meta[sid]["detect_k"] is not None and sid not in first_cover:
            first_cover[sid] = t_end
    clock = 0.0
    fs = int(FRAME_S * MODEL_SAMPLE_RATE)
    while heap or eng.next_due() is not None:
        due = eng.next_due()
        start = None if due is None else max(free_at, clock, due)     # when the device can take the work
        # The device serves work in the order it was asked for. A frame that costs no device time (features
        # per batch) is simply in before the device frees up; one whose front end runs on the device
        # (features per frame) queues behind a dispatch that was due before it arrived.
        asked = start if policy.front_end == "batch" or due is None else max(clock, due)
        if heap and (start is None or heap[0][0] <= asked):
            t, _, sid, k = heapq.heappop(heap)
            clock = t
            m = meta[sid]
            if k < 0:                         # the stream ends: its last chunk runs at once
                events = eng.close(sid, now=max(t, free_at))
                free_at = eng.steps[-1].end
                collect(events, free_at)
                collect_last(sid, free_at)
                continue
            n_before = len(eng.steps)
            n_frames += 1
            eng.submit(sid, m["utt"]["audio"][k * fs:(k + 1) * fs], now=t)
            for stp in eng.steps[n_before:]:      # the per-frame front end waits for the device like a step
                stp.start = max(stp.start, free_at)
                free_at = stp.end
            continue
        clock = start
        events = eng.dispatch(start)
        free_at = eng.steps[-1].end if eng.steps else start
        collect(events, free_at)
    # load = device time over the audio time offered (until the last frame arrived): >= 1 means the device
    # cannot keep up, however long the run is allowed to drain its backlog afterwards
    offered = max(m["start"] + m["n"] * FRAME_S for m in meta.values()) if meta else duration_s
    span = max(free_at, offered)
    batches = [s for s in eng.steps if s.kind == "batch"]
    added = np.array([s.end - r for s in batches for r in s.ready_times]) * 1000
    busy = sum(s.duration for s in eng.steps)
    front_s = sum(s.duration for s in eng.steps if s.kind == "front")
    eos_flush = [flush_at[s] - (m["start"] + m["utt"]["speech_end"]) for s, m in meta.items() if s in flush_at]
    det_to_flush = [flush_at[s] - (m["start"] + (m["detect_k"] + 1) * FRAME_S) for s, m in meta.items()
                    if s in flush_at and m["detect_k"] is not None]
    eos_cover = [first_cover[s] - (m["start"] + m["utt"]["speech_end"]) for s, m in meta.items() if s in first_cover]
    pct = (lambda a, q: float(np.percentile(a, q)) if len(a) else float("nan"))
    out = {"streams": n_streams, "policy": {"target_batch": policy.target_batch, "max_wait_ms": policy.max_wait_ms,
                                            "pause_ms": policy.pause_ms},
           "chunks": int(len(added)), "steps": len(batches), "frames": n_frames,
           "added_latency_ms": {"p50": pct(added, 50), "p95": pct(added, 95), "p99": pct(added, 99)},
           "device_busy_fraction": busy / offered, "per_frame_front_end_fraction": front_s / offered,
           "mean_batch": float(np.mean([len(s.stream_ids) for s in batches])) if batches else 0.0,
           "batch_fill": (float(np.mean([len(s.stream_ids) for s in batches])) / policy.target_batch) if batches else 0.0,
           "virtual_s": span, "offered_s": offered, "utterances": len(meta)}
    if eos_flush:
        out["eos_to_final_ms_flush"] = {"p50": pct(np.array(eos_flush) * 1000, 50), "p95": pct(np.array(eos_flush) * 1000, 95)}
        out["detect_to_final_ms_flush"] = {"p50": pct(np.array(det_to_flush) * 1000, 50),
                                           "p95": pct(np.array(det_to_flush) * 1000, 95)}
    if eos_cover:
        out["eos_to_final_ms_no_flush"] = {"p50": pct(np.array(eos_cover) * 1000, 50),
                                           "p95": pct(np.array(eos_cover) * 1000, 95)}
    if keep_steps:
        out["steps"] = [{"start": s.start, "duration": s.duration, "streams": list(s.stream_ids),
                         "ready": list(s.ready_times), "kind": s.kind} for s in eng.steps]
        out["stream_starts"] = {sid: m["start"] for sid, m in meta.items()}
    out["real_time"] = bool(out["added_latency_ms"]["p95"] <= latency_budget_ms and busy / offered < 1.0)
    return out


def sustained(rec, utts, policy: BatchPolicy, grid=(1, 2, 4, 8, 16, 32, 64, 128), **kw) -> tuple[int, list]:
    """The largest stream count on ``grid`` (refined by bisection) that runs in real time; every run."""
    res = sustained_interleaved({"x": lambda n, seed=0: simulate(rec, utts, n, policy, seed=seed, **kw)}, grid, 1)
    return res["x"]["sustained_streams"], res["x"]["runs"]


def _real_time(run: dict, budget_ms: float) -> bool:
    return bool(run["added_latency_ms"]["p95"] <= budget_ms and run["device_busy_fraction"] < 1.0)


def sustained_interleaved(runners: dict, grid=(1, 2, 4, 8, 16, 32, 64, 128), repeats: int = 3,
                          latency_budget_ms: float = 100.0) -> dict:
    """Streams sustained in real time by each configuration (``{name: run(n_streams, seed) -> result}``),
    robust to a machine whose load comes and goes: at every stream count each configuration runs
    ``repeats`` times, the configurations interleaved (a, b, c, a, b, c, ...), so a burst of outside load
    hits all of them alike; a count is sustained when the median repeat's p95 added latency is within the
    budget and the device is busy less than the wall time. The grid is refined by bisection per
    configuration. Also the spread: the largest count every repeat sustained (worst) and the largest any
    repeat sustained (best)."""
    st = {name: {"best": 0, "fail": None, "i": 0, "runs": []} for name in runners}

    def next_n(s):
        if s["fail"] is None:
            return grid[s["i"]] if s["i"] < len(grid) else None
        if s["fail"] - s["best"] > max(1, s["best"] // 8):
            return (s["best"] + s["fail"]) // 2
        return None
    while True:
        todo = {name: n for name, s in st.items() if (n := next_n(s)) is not None}
        if not todo:
            break
        reps: dict = {name: [] for name in todo}
        for _ in range(repeats):
            for name, n in todo.items():
                reps[name].append(runners[name](n, seed=0))
        for name, n in todo.items():
            rs, s = reps[name], st[name]
            p95 = [r["added_latency_ms"]["p95"] for r in rs]
            busy = [r["device_busy_fraction"] for r in rs]
            mid = int(np.argsort(p95)[len(p95) // 2])
            run = dict(rs[mid])          # the median repeat, with every repeat's figures beside it
            run["repeats"] = {"p95_ms": p95, "busy": busy, "real_time": [_real_time(r, latency_budget_ms) for r in rs]}
            run["real_time"] = bool(np.median(p95) <= latency_budget_ms and np.median(busy) < 1.0)
            s["runs"].append(run)
            if s["fail"] is None:
                s["i"] += 1
            if run["real_time"]:
                s["best"] = max(s["best"], n)
            else:
                s["fail"] = n if s["fail"] is None else min(s["fail"], n)
    out = {}
    for name, s in st.items():
        ok_all = [r["streams"] for r in s["runs"] if all(r["repeats"]["real_time"])]
        ok_any = [r["streams"] for r in s["runs"] if any(r["repeats"]["real_time"])]
        out[name] = {"sustained_streams": s["best"], "sustained_worst": max(ok_all, default=0),
                     "sustained_best": max(ok_any, default=0), "repeats": repeats, "runs": s["runs"]}
    return out


def step_time_by_batch(rec, utts, sizes=(1, 2, 4, 8, 16, 32, 64), repeats: int = 5) -> list[dict]:
    """Measured time of one cache-aware step against the number of streams in it (later chunks)."""
    from ..asr.streaming import preloaded_streams
    timer = _timer(rec.device)
    out = []
    for b in sizes:
        audios = [utts[i % len(utts)]["audio"] for i in range(b)]
        states = preloaded_streams(rec, audios)
        for s in states:     # run each stream's first chunk so the timed ones are ordinary later chunks
            rec.step_batch([s], [rec.next_chunk(s, final=False)])
        ts = []
        for _ in range(repeats):
            chunks = [rec.next_chunk(s, final=False) for s in states]
            if any(c is None or c.is_last for c in chunks):
                break
            t0 = timer()
            rec.step_batch(states, chunks)
            ts.append(timer() - t0)
        if ts:
            med = float(np.median(ts))
            out.append({"batch": b, "step_ms": med * 1000, "ms_per_stream": med * 1000 / b})
    return out


def plot_timeline(run: dict, slots: int = 4, t0: float = 0.0, t1: float | None = None, ax=None):
    """Device steps over time (bar height = streams in the step) and, below, the first ``slots`` stream
    slots: a tick where a chunk became complete, a bar where it ran (inside which batch)."""
    import matplotlib.pyplot as plt
    steps = run["steps"]
    t1 = t1 if t1 is not None else max(s["start"] + s["duration"] for s in steps)
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 3.5))
    cmap = plt.get_cmap("viridis")
    top = max(len(s["streams"]) for s in steps)
    for s in steps:
        if s["start"] > t1 or s["start"] + s["duration"] < t0:
            continue
        c = "tab:red" if s["kind"] != "batch" else cmap(len(s["streams"]) / max(1, top))
        ax.broken_barh([(s["start"], s["duration"])], (slots + 0.5, 1.0), color=c)
        for sid, ready in zip(s["streams"], s["ready"]):
            slot = int(sid.split("-")[0])
            if slot < slots:
                ax.broken_barh([(s["start"], s["duration"])], (slot - 0.3, 0.6), color=c)
                if ready is not None:
                    ax.plot([ready, ready], [slot - 0.4, slot + 0.4], "k-", lw=1)
                    ax.plot([ready, s["start"]], [slot, slot], "k:", lw=0.8)
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, top))
    ax.figure.colorbar(sm, ax=ax, label="streams in the step", pad=0.01)
    ax.set_yticks(list(range(slots)) + [slots + 1], [f"stream slot {i}" for i in range(slots)] + ["device"])
    ax.set_xlim(t0, t1)
    ax.set_xlabel("time (s): | chunk complete, ... waiting, bar = the step it ran in (colour: batch size; red: flush/close)")
    ax.set_title(f"{run['streams']} streams, target batch {run['policy']['target_batch']}, "
                 f"max wait {run['policy']['max_wait_ms']:.0f} ms")
    return ax


def plot(result: dict, path: Path | None = None):
    """Three panels: step time per stream against batch size; p95 added latency against streams (every
    configuration, the budget); end-of-speech latency with and without the pause flush."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    sb = result["step_time_by_batch"]
    ax[0].plot([r["batch"] for r in sb], [r["ms_per_stream"] for r in sb], "o-")
    ax[0].set_xscale("log", base=2)
    ax[0].set_xlabel("streams in one step")
    ax[0].set_ylabel("ms per stream-chunk")
    ax[0].set_title(f"why batch: step cost per stream ({result['device']})")
    for key, style in (("single", "s--"), ("single_chunk_front_end", "^:"), ("batched", "o-"), ("batched_no_flush", "o:"),
                       ("nemo_pipeline", "d-.")):
        if key not in result:
            continue
        runs = sorted(result[key]["runs"], key=lambda r: r["streams"])
        label = {"single": "alone, features per frame", "single_chunk_front_end": "alone, features per chunk",
                 "batched": "batched, features per batch", "batched_no_flush": "batched, no pause flush",
                 "nemo_pipeline": "NeMo's own pipeline"}[key]
        ax[1].plot([r["streams"] for r in runs], [r["added_latency_ms"]["p95"] for r in runs], style,
                   label=f"{label}: sustains {result[key]['sustained_streams']}")
    ax[1].axhline(result["latency_budget_ms"], color="k", lw=0.8, ls=":")
    ax[1].set_xscale("log", base=2)
    ax[1].set_yscale("log")
    ax[1].set_xlabel("concurrent streams")
    ax[1].set_ylabel("p95 added latency per chunk (ms)")
    ax[1].set_title(f"ratio {result['ratio']:.1f}x streams in real time" if result["ratio"] is not None
                    else "the baseline sustains no stream in real time")
    ax[1].legend(fontsize=8)
    eos = result.get("end_of_speech", {})
    labels, vals = [], []
    for k, lab in (("eos_to_final_ms_no_flush", "no flush"), ("eos_to_final_ms_flush", "pause flush")):
        if eos.get(k) is not None:           # None: no utterance reached its end of speech in the run
            labels.append(lab)
            vals.append((eos[k]["p50"], eos[k]["p95"]))
    if vals:
        x = np.arange(len(vals))
        ax[2].bar(x - 0.2, [v[0] for v in vals], 0.4, label="p50")
        ax[2].bar(x + 0.2, [v[1] for v in vals], 0.4, label="p95")
        ax[2].set_xticks(x, labels)
        ax[2].set_ylabel("true end of speech -> final result (ms)")
        ax[2].set_title(f"pause {result['policy']['pause_ms']:.0f} ms, chunk {result['chunk_ms']:.0f} ms")
        ax[2].legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def configurations(target_batch: int = 16, max_wait_ms: float = 40.0, pause_ms: float | None = 300.0) -> dict:
    """The compared configurations: the seed's per-stream CPU baseline (each frame's features as it arrives,
    each chunk stepped alone), each chunk alone with its features once per chunk (to separate the two
    effects), the batched engine (features and encoder step once per batch), and the engine without its pause
    flush (the like-for-like peer of NeMo's pipeline, which has none)."""
    return {"single": BatchPolicy(target_batch=1, max_wait_ms=0.0, pause_ms=pause_ms, max_batch=1, front_end="frame"),
            "single_chunk_front_end": BatchPolicy(target_batch=1, max_wait_ms=0.0, pause_ms=pause_ms, max_batch=1,
                                                  front_end="batch"),
            "batched": BatchPolicy(target_batch=target_batch, max_wait_ms=max_wait_ms, pause_ms=pause_ms),
            # like for like with NeMo's own pipeline, which has no pause flush
            "batched_no_flush": BatchPolicy(target_batch=target_batch, max_wait_ms=max_wait_ms, pause_ms=None)}


def headline(result: dict) -> dict:
    """The figures the README, the notebook and the closing notes quote, read off one bench result."""
    out = {"device": result["device"], "chunk_ms": result["chunk_ms"], "ratio": result["ratio"],
           "ratio_spread": result.get("ratio_spread"), "repeats": result.get("repeats", 1),
           "ratio_vs_nemo_pipeline": result.get("ratio_vs_nemo_pipeline")}
    for key in ("single", "single_chunk_front_end", "batched", "batched_no_flush", "nemo_pipeline"):
        if key in result:
            n = result[key]["sustained_streams"]
            at = next((r for r in result[key]["runs"] if r["streams"] == n), None)
            out[key] = {"sustained_streams": n,
                        "spread": [result[key].get("sustained_worst", n), result[key].get("sustained_best", n)],
                        "p95_added_ms": at["added_latency_ms"]["p95"] if at else None,
                        "device_busy": at["device_busy_fraction"] if at else None,
                        "mean_batch": at.get("mean_batch") if at else None}
    return out
