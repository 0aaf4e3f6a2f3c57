"""``bench s2s``: the speech-to-speech model and the cascade built from the workbench's rooms, on the same
held-out requests (test speakers, test templates), through one accounting.

Two systems answer a request's audio:

- ``SpeechToSpeech``: request audio → codec codes → the LM (inner text, then speech codes) → the codec's
  decoder.
- ``Cascade``: streaming ASR → the repair room's graph parser → the dialogue grammar's answer → the LTTS.
  The cascade hears words, not mood, so it answers in its neutral delivery.

Both share a defined fallback: audio over ``MAX_REQUEST_S`` is a typed ``RequestError``. Audio with no speech
in it (silero-vad), and, in the cascade, a request the parser places in no known intent, get the spoken
``FALLBACK``. Generation is bounded (``max_text``, ``max_frames``).

Accounting, the same for every system (``score``):
- Whisper tiny.en's WER against the reference answer;
- task success (judge.py) on dialogue turns, and translations said back, separately;
- prosody following: the Spearman correlation of request and response arousal, plus the share of excited requests
  answered excitedly (``arousal``);
- DNSMOS;
- similarity to the assistant voice;
- first audio after the end of the request, p50/p95.

Latency is the time from the end of the request to the first audio that can be played:
- cascade: the recogniser has already stepped every chunk that arrived while the user spoke, so only finalize,
  parse, answer and synthesis remain (the LTTS does not stream, so its first audio is the whole answer);
- speech-to-speech: the request is encoded whole (the codec is causal and could encode while the user speaks,
  so this overstates the wait), then generation runs until the first frame has every codebook, and that frame is
  decoded.

The reference row is the training target itself (espeak-ng's rendering of the gold answer in the assistant's
voice). It is the ceiling each metric can reach on these requests.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from . import data as D

from .evaluation import arousal, score
from .pipeline import Cascade, SpeechToSpeech


def run(n: int = 48, model_dir=None, stages_dir=None, rows: list[dict] | None = None, cascade: Cascade | None = None,
        out_dir=None, results_dir=None, seed: int = 0, ablation: bool = True,
        command: str = "python -m workbench bench s2s") -> dict:
    """Every system on the same ``n`` held-out turns (``data.prepare("test", n)``; ``rows`` to pass others)."""
    from .. import judges
    from ..audio import load_audio
    from ..results import save_bench
    from .recipe import MODELS, WORK, S2SModelError
    t0 = time.time()
    rows = rows if rows is not None else D.prepare("test", n, seed=seed)
    requests = [load_audio(r["audio_filepath"]) for r in rows]
    refs = [load_audio(r["response_audio_filepath"]) for r in rows]
    dlg = [i for i, r in enumerate(rows) if r["task"] == "dialogue"]
    req_arousal, _ = arousal(requests)
    ref_arousal, norm = arousal([refs[i] for i in dlg])
    moods = [rows[i]["arousal"] for i in dlg]
    exc = [a for a, m in zip(ref_arousal, moods) if m == "excited"]
    neu = [a for a, m in zip(ref_arousal, moods) if m == "neutral"]
    threshold = float((np.mean(exc) + np.mean(neu)) / 2) if exc and neu else float(np.median(ref_arousal))
    target = np.mean([judges.speaker_embedding(refs[i]) for i in dlg], axis=0)
    res: dict = {}

    def measure(name: str, system, latency: bool = True):
        s = time.time()
        outs = [system.respond(a, task=r["task"]) for a, r in zip(requests, rows)]
        res[name] = score(outs, rows, req_arousal, norm, threshold, target, latency)
        res[name]["seconds"] = round(time.time() - s, 1)
        print(f"bench s2s: {name}: task success {res[name]['task_success']['value']:.2f}, Whisper WER "
              f"{res[name]['wer_whisper']['value']:.2f}, ρ {res[name]['prosody']['spearman']['value']:.2f} "
              f"({time.time() - t0:.0f} s)", flush=True)

    res["reference (espeak-ng, the training target)"] = score(
        [{"audio": a} for a in refs], rows, req_arousal, norm, threshold, target, latency=False)
    model_dir = Path(model_dir or MODELS / "s2s")
    try:
        s2s = SpeechToSpeech.load(model_dir)
        measure("speech-to-speech (stage 5, shipped)", s2s)
        training = s2s.meta.get("stages")
    except S2SModelError as e:
        print(f"bench s2s: no speech-to-speech model ({e})")
        s2s, training = None, None
    measure("cascade (streaming ASR → parser → grammar → LTTS)", cascade or Cascade())
    if ablation and s2s is not None:
        for stage in (3, 4):
            try:
                st = SpeechToSpeech.load(Path(stages_dir or WORK) / f"stage{stage}")
            except S2SModelError as e:
                print(f"bench s2s: ablation without stage {stage} ({e})")
                continue
            measure(f"after stage {stage}", st, latency=False)
    result = {"command": command, "n_turns": len(rows), "n_dialogue": len(dlg), "seed": seed,
              "turns": "test split: held-out templates and speakers", "model": str(model_dir / "model.pt"),
              "excited_threshold": threshold, "torch_threads": torch.get_num_threads(), "systems": res,
              "training": training, "seconds": round(time.time() - t0, 1)}
    save_bench(out_dir or Path("reports") / "bench" / time.strftime("%Y-%m-%d"), "bench_s2s", result,
               results_dir=results_dir)
    return result
