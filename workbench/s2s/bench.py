"""Hearing the speech-to-speech model answer: generation through the codec's decoder, judged by Whisper.

``answer`` runs one request end to end (request codes → the inner text → speech codes → audio) and times it.
``evaluate`` scores many answers in one accounting: Whisper tiny.en's WER against the reference answer, task
success (judge.py), and how many generations hit their length limit. The full ``bench s2s`` (the cascade beside
it, prosody following, DNSMOS, latency percentiles, the stage ablation) builds on these.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from . import data as D
from .layout import Layout
from .model import SpeechTextLM, generate


def prefix_tensors(lay: Layout, row: dict) -> tuple[torch.Tensor, torch.Tensor]:
    b = lay.build(D.s2s_prefix(lay, row))
    return torch.from_numpy(b["text"]), torch.from_numpy(b["audio"])


def answer(model: SpeechTextLM, tok, codec, row: dict, max_text: int = 48, max_frames: int = 150) -> dict:
    """The model's spoken answer to one coded request: its inner text, 16 kHz audio, and the seconds from the
    request's codes to the whole answer's audio (``seconds``)."""
    t0 = time.perf_counter()
    text, audio = prefix_tensors(model.layout, row)
    g = generate(model, text, audio, max_text=max_text, max_frames=max_frames)
    words = tok.decode(g["text"], skip_special_tokens=True) if g["text"] else ""
    wav = codec.decode(g["codes"]) if g["codes"].shape[1] > 0 else np.zeros(0, np.float32)
    return {"text": words, "audio": wav, "frames": int(g["codes"].shape[1]), "truncated": g["truncated"],
            "seconds": time.perf_counter() - t0}


def evaluate(model: SpeechTextLM, tok, codec, rows: list[dict], max_frames: int = 150) -> dict:
    """Whisper WER of the answers against their references, task success, and limits hit, with 95 % intervals."""
    from ..asr.scoring import utterance_errors
    from ..judges import whisper_transcribe
    from ..stats import rate_ci, wer_ci
    from .judge import task_success
    outs = [answer(model, tok, codec, r, max_frames=max_frames) for r in rows]
    silent = np.zeros(1600, np.float32)            # an answer with no frames is heard as silence
    heard = whisper_transcribe([o["audio"] if len(o["audio"]) >= 1600 else silent for o in outs])
    e, w = utterance_errors([r["response_text"] for r in rows], heard)
    judged = [task_success(h, r) for h, r in zip(heard, rows)]
    inner = [task_success(o["text"], r)["success"] for o, r in zip(outs, rows)]
    n = len(rows)
    return {"n": n, "wer_whisper": wer_ci(e, w), "task_success": rate_ci(sum(j["success"] for j in judged), n),
            "values_said": rate_ci(sum(j["values"] for j in judged), n),
            "inner_text_success": rate_ci(sum(inner), n),
            "truncated": rate_ci(sum(o["truncated"] for o in outs), n),
            "seconds_p50": float(np.median([o["seconds"] for o in outs])),
            "examples": [{"request": r["text"], "reference": r["response_tagged"], "inner": o["text"], "heard": h}
                         for r, o, h in list(zip(rows, outs, heard))[:5]]}
