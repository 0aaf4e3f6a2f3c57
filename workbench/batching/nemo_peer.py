"""NeMo's own batched streaming inference (``nemo.collections.asr.inference``, NeMo 3.0) as a peer of the
frame batcher, on the same load and the same model, in the same ``bench batching`` run.

What it takes to run it on our model (found by reading NeMo 3.0's code, not documented there):
- the stock wrapper loads a model by *name* (``restore_from`` / ``from_pretrained``) and then changes it in place
  (decoding strategy, attention context, dither, dtype), so the peer loads its own copy of the same ``.nemo``;
- its feature buffer starts filled with log(0)-level features (about -16.6): after our global-MVN front end
  silence is 0, so the buffer is reset to 0 (without it the transcripts fall apart);
- every request in one step must be exactly one chunk of audio (``chunk_size_in_secs``: 160 ms at [70,1]),
  so frames are gathered into chunks before they reach it, and the last chunk is zero-padded;
- it does not read our ``<EOU>`` token (it ends utterances by runs of blank), ITN and translation are off.

The load is the frame batcher bench's (same slots, utterances, stagger, seed), its dispatch rule the same
(target batch or max wait) and its cost measured the same way on a virtual clock: each ``transcribe_step``
occupies the device for as long as it really took, so the two are compared like for like.
"""
from __future__ import annotations

import heapq
import time

import numpy as np

from ..audio import MODEL_SAMPLE_RATE

FRAME_S = 0.03


def _config(context, max_streams: int):
    from omegaconf import OmegaConf
    return OmegaConf.create({
        "asr": {"model_name": "preloaded", "device": "cpu", "device_id": 0, "compute_dtype": "float32", "use_amp": False,
                "decoding": {"strategy": "greedy_batch", "preserve_alignments": False, "fused_batch_size": -1,
                             "greedy": {"use_cuda_graph_decoder": False, "max_symbols": 10,
                                        "preserve_frame_confidence": False}}},
        "itn": {"input_case": "lower_cased", "whitelist": None, "overwrite_cache": False,
                "max_number_of_permutations_per_split": 729, "left_padding_size": 4, "batch_size": 32, "n_jobs": 1},
        "confidence": {"exclude_blank": True, "aggregation": "mean",
                       "method_cfg": {"name": "entropy", "entropy_type": "tsallis", "alpha": 0.5, "entropy_norm": "exp"}},
        "endpointing": {"stop_history_eou": 800, "residue_tokens_at_end": 2},
        "streaming": {"sample_rate": MODEL_SAMPLE_RATE, "batch_size": max_streams, "word_boundary_tolerance": 4,
                      "att_context_size": list(context), "use_cache": True, "use_feat_cache": True,
                      "chunk_size_in_secs": None, "request_type": "frame", "num_slots": max_streams},
        "matmul_precision": "highest", "log_level": 40, "pipeline_type": "cache_aware", "asr_decoding_type": "rnnt",
        "enable_itn": False, "enable_nmt": False, "asr_output_granularity": "segment", "cache_dir": None,
        "lang": None, "return_tail_result": False})


def build_pipeline(model_path, context=(70, 1), device: str = "cpu", max_streams: int = 512):
    """NeMo's ``CacheAwareRNNTPipeline`` over its own copy of the model at ``model_path``."""
    from nemo.collections.asr.inference.factory.cache_aware_pipeline_builder import CacheAwarePipelineBuilder
    from nemo.collections.asr.inference.model_wrappers.cache_aware_rnnt_inference_wrapper import (
        CacheAwareRNNTInferenceWrapper)
    from nemo.collections.asr.inference.pipelines.cache_aware_rnnt_pipeline import CacheAwareRNNTPipeline
    from ..asr.streaming import load_model
    cfg = _config(context, max_streams)
    cfg.asr.device = "cuda" if str(device).startswith("cuda") else "cpu"
    model = load_model(model_path, device=cfg.asr.device)

    class Preloaded(CacheAwareRNNTInferenceWrapper):
        def load_model(self, model_name, map_location):      # the stock wrapper only loads by name
            return model.to(map_location).eval()
    wrapper = Preloaded(model_name=str(model_path), decoding_cfg=CacheAwarePipelineBuilder.get_rnnt_decoding_cfg(cfg),
                        device=cfg.asr.device, device_id=0, compute_dtype="float32", use_amp=False)
    pipe = CacheAwareRNNTPipeline(cfg, wrapper, itn_model=None, nmt_model=None)
    pipe.bufferer.ZERO_LEVEL_SPEC_DB_VAL = 0.0       # silence after our global MVN, not log(0)
    pipe.bufferer.feature_buffer.fill_(0.0)
    return pipe


def transcribe(pipe, audios: list[np.ndarray]) -> list[str]:
    """Whole recordings through the pipeline, all streams stepped together chunk by chunk (for checks)."""
    import torch
    from nemo.collections.asr.inference.streaming.framing.request import Frame
    from nemo.collections.asr.inference.streaming.framing.request_options import ASRRequestOptions
    n = int(round(pipe.chunk_size_in_secs * MODEL_SAMPLE_RATE))
    pos, text = [0] * len(audios), [""] * len(audios)
    pipe.open_session()
    try:
        while True:
            frames = []
            for sid, a in enumerate(audios):
                if pos[sid] > 0 and pos[sid] >= len(a):
                    continue
                seg = a[pos[sid]:pos[sid] + n]
                frames.append(Frame(samples=torch.from_numpy(np.pad(seg, (0, n - len(seg))).astype(np.float32)),
                                    stream_id=sid, is_first=pos[sid] == 0, is_last=pos[sid] + n >= len(a),
                                    length=len(seg), options=ASRRequestOptions() if pos[sid] == 0 else None))
                pos[sid] += n
            if not frames:
                return [t.strip() for t in text]
            for out in pipe.transcribe_step(frames):
                text[out.stream_id] += out.final_transcript
    finally:
        pipe.close_session()


class PeerRunner:
    """``run(n_streams, seed)`` -> the figures ``bench.sustained_interleaved`` reads, for NeMo's pipeline under
    the bench's load and dispatch rule."""

    def __init__(self, pipe, utts, duration_s: float, target_batch: int, max_wait_ms: float,
                 latency_budget_ms: float = 100.0, stagger_s: float | None = None):
        self.pipe, self.utts, self.duration_s = pipe, utts, duration_s
        self.target_batch, self.max_wait_s, self.budget = target_batch, max_wait_ms / 1000, latency_budget_ms
        self.stagger_s = FRAME_S * 40 if stagger_s is None else stagger_s
        self.chunk = int(round(pipe.chunk_size_in_secs * MODEL_SAMPLE_RATE))
        self.info = {"pipeline": "nemo.collections.asr.inference CacheAwareRNNTPipeline",
                     "chunk_ms": 1000 * self.chunk / MODEL_SAMPLE_RATE,
                     "dispatch": {"target_batch": target_batch, "max_wait_ms": max_wait_ms},
                     "notes": "own model copy; feature buffer reset to 0 (global MVN); one-chunk requests; "
                              "<EOU> not read; ITN/NMT off; no pause flush"}

    def __call__(self, n_streams: int, seed: int = 0) -> dict:
        import torch
        from nemo.collections.asr.inference.streaming.framing.request import Frame
        from nemo.collections.asr.inference.streaming.framing.request_options import ASRRequestOptions
        rng = np.random.default_rng(seed)
        chunk_s = self.chunk / MODEL_SAMPLE_RATE
        from .simulation import load_schedule
        heap, seq, offered = [], 0, 0.0
        # the frame batcher bench's load: same draws, same stagger
        for sid, (_, t, u, n_frames) in enumerate(load_schedule(self.utts, n_streams, self.duration_s, self.stagger_s, rng)):
            a = u["audio"]
            end = t + n_frames * FRAME_S
            n_chunks = int(np.ceil(len(a) / self.chunk))
            for k in range(n_chunks):   # a chunk is complete when its last 30 ms frame has arrived
                ready = min(end, t + np.ceil((k + 1) * chunk_s / FRAME_S - 1e-9) * FRAME_S)
                heapq.heappush(heap, (ready, seq, sid, k, n_chunks, a))
                seq += 1
            offered = max(offered, end)
        queue: dict = {}          # stream -> [(ready, k, n_chunks, audio)], in order
        added, busy, sizes, free_at, clock = [], 0.0, [], 0.0, 0.0
        self.pipe.open_session()
        try:
            while heap or any(queue.values()):
                heads = [q[0][0] for q in queue.values() if q]
                due = None
                if heads:
                    due = -np.inf if len(heads) >= self.target_batch else min(heads) + self.max_wait_s
                start = None if due is None else max(free_at, clock, due)
                if heap and (start is None or heap[0][0] <= start):
                    ready, _, s, k, nc, a = heapq.heappop(heap)
                    clock = ready
                    queue.setdefault(s, []).append((ready, k, nc, a))
                    continue
                clock = start
                frames, readies = [], []
                for s in [s for s, q in sorted(queue.items(), key=lambda kv: kv[1][0][0] if kv[1] else np.inf) if q]:
                    ready, k, nc, a = queue[s].pop(0)
                    seg = a[k * self.chunk:(k + 1) * self.chunk]
                    frames.append(Frame(samples=torch.from_numpy(np.pad(seg, (0, self.chunk - len(seg))).astype(np.float32)),
                                        stream_id=s, is_first=k == 0, is_last=k == nc - 1, length=len(seg),
                                        options=ASRRequestOptions() if k == 0 else None))
                    readies.append(ready)
                t0 = time.perf_counter()
                self.pipe.transcribe_step(frames)
                dt = time.perf_counter() - t0
                free_at = start + dt
                busy += dt
                sizes.append(len(frames))
                added += [free_at - r for r in readies]
                queue = {s: q for s, q in queue.items() if q}
        finally:
            self.pipe.close_session()
        span = max(free_at, offered)
        a = np.array(added) * 1000
        pct = (lambda q: float(np.percentile(a, q)) if len(a) else float("nan"))
        out = {"streams": n_streams, "chunks": len(a), "steps": len(sizes),
               "added_latency_ms": {"p50": pct(50), "p95": pct(95), "p99": pct(99)},
               "device_busy_fraction": busy / max(offered, 1e-9), "mean_batch": float(np.mean(sizes)) if sizes else 0.0,
               "batch_fill": (float(np.mean(sizes)) / self.target_batch) if sizes else 0.0, "virtual_s": span, "offered_s": offered}
        out["real_time"] = bool(out["added_latency_ms"]["p95"] <= self.budget and out["device_busy_fraction"] < 1.0)
        return out


def peer_runner(rec, utts, model_path, duration_s: float, target_batch: int, max_wait_ms: float,
                latency_budget_ms: float = 100.0) -> PeerRunner:
    pipe = build_pipeline(model_path, tuple(rec.att_context), str(rec.device))
    return PeerRunner(pipe, utts, duration_s, target_batch, max_wait_ms, latency_budget_ms)
