"""``python -m workbench bench tts``: the LTTS, its conventional baseline, espeak-ng and piper on the same held-out
responses, judged by models nobody here trained, with the same accounting for every system.

Texts: responses from the held-out templates (responses.HELD_OUT), with their gold stage directions. Each system
speaks the tagged text (piper, which reads no directions, the plain text):
- intelligibility: Whisper tiny.en WER and our ASR's WER against the response's words (fillers and laughs left out
  of the reference; same normalisation for all), with bootstrap intervals;
- quality: DNSMOS P.835 overall; speaker similarity: GE2E cosine to the target voice (the mean embedding of the
  target voice's own renderings of other texts);
- fillers: share of [um]/[uh] directions whose filler appears in the Whisper and in our ASR transcript;
- style: every delivery tag put in front of ``n_style`` plain texts, measured against the untagged rendering
  (prosody.py), Spearman per attribute (whisper: ROC AUC), and per tag the cosine of realised to requested change;
- tandem: of the tagger's directions on the held-out responses, the share the LTTS realises, as written and after
  the selection on its dev-measured realisation (tandem.py);
- speed: real-time factor and time to first audio (p50/p95) on this machine's threads. Neither synthesiser here
  streams: its first audio is its whole utterance.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import judges
from ..stats import stat_ci, wer_ci
from .prosody import realisation
from .render import render_espeak
from .responses import sample
from .styles import parse
from .tandem import agreement, from_rows, style_rows

SR = 16000


def test_texts(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """``n`` held-out responses (domain, plain, tagged), seeded."""
    rng = np.random.default_rng([seed, 17])
    return [sample(rng, held_out=True) for _ in range(n)]


def _piper(text: str) -> np.ndarray:
    from ..audio import resample
    from ..data.engines import get_engine
    wav, sr, _ = get_engine("piper").speak(text, "joe", 100, 50)
    return resample(wav, sr, SR) if sr != SR else wav


def systems(ltts_dir=None, baseline_dir=None) -> dict:
    """name -> (speak(tagged) -> audio, reads directions, training record or None)."""
    from ..hub import ModelNotAvailableError
    from .ltts import TTSModelError, load_synthesiser
    from .recipe import default_dir
    out = {}
    for name, folder in (("LTTS (LM + FastSpeech2, in tandem)", ltts_dir or default_dir("ltts")),
                         ("baseline (FastSpeech2)", baseline_dir or default_dir("baseline"))):
        try:
            syn = load_synthesiser(folder)
            out[name] = (syn.synthesise, True, syn.meta.get("training"))
        except TTSModelError as e:
            print(f"bench tts: no {name} ({e})")
    out["espeak-ng (target voice, SSML)"] = (lambda t: render_espeak(t).audio, True, None)
    try:
        _piper("hello")
        from .styles import plain
        out["piper (joe, plain text)"] = (lambda t: _piper(" ".join(w for w in plain(t).split()
                                                                   if w not in ("um", "uh", "ha"))), False, None)
    except (ImportError, ModelNotAvailableError, RuntimeError) as e:
        print(f"bench tts: no piper ({e})")
    return out


def filler_recall(tagged: list[str], transcripts: list[str]) -> dict:
    from ..stats import rate_ci
    k = n = 0
    for t, h in zip(tagged, transcripts):
        for s in parse(t):
            for _, e in s.events:
                if e in ("um", "uh"):
                    n += 1
                    k += int(any(w.strip(",.?!").lower() in ("um", "uh", "uhm", "umm", "er", "ah") for w in h.split()))
    return rate_ci(k, n)


def _tandem(plains: list[str], res: dict, ltts_dir=None) -> dict | None:
    """The tagger's directions on the held-out responses against the LTTS's realisation (tandem.agreement): dev-
    measured fidelity for the selection, the bench's held-out fidelity as the judge."""
    import json
    from ..hub import ModelNotAvailableError
    from .recipe import default_dir
    from .tagger import load_tagger, rule_tagger
    name = next((k for k in res if k.startswith("LTTS") and "fidelity" in res[k]), None)
    if name is None:
        return None
    meta = json.loads((Path(ltts_dir or default_dir("ltts")) / "tts.json").read_text())
    try:
        tagger, which = load_tagger().tag_many, "tagger"
    except ModelNotAvailableError:
        tagger, which = (lambda ps: [rule_tagger(p) for p in ps]), "keyword rule"
    out = agreement(tagger(plains), meta.get("fidelity", {}).get("tags"), res[name]["fidelity"])
    return {"tagger": which, "system": name, **out}


def run(n: int = 40, n_style: int = 8, ltts_dir=None, baseline_dir=None, out_dir=None, results_dir=None, seed: int = 0,
        command: str = "python -m workbench bench tts") -> dict:
    import torch
    from ..asr.scoring import utterance_errors
    from ..asr.shipped import load_shipped, transcribe_recordings
    from ..results import save_bench
    asr = load_shipped()
    texts = test_texts(n, seed)
    refs = [p for _, p, _ in texts]
    tagged = [t for _, _, t in texts]
    styles = [p for _, p, _ in test_texts(n_style, seed + 1)]
    target = np.mean([judges.speaker_embedding(render_espeak(p).audio)
                      for _, p, _ in test_texts(12, seed + 2)], axis=0)
    res: dict = {}
    t0 = time.time()
    for name, (speak, reads_tags, training) in systems(ltts_dir, baseline_dir).items():
        audios, secs = [], []
        for t in tagged:
            s = time.perf_counter()
            audios.append(np.asarray(speak(t), np.float32))
            secs.append(time.perf_counter() - s)
        dur = sum(len(a) for a in audios) / SR
        row: dict = {"reads_directions": reads_tags, "rtf": round(sum(secs) / dur, 4),
                     "first_audio_s": {"p50": round(float(np.percentile(secs, 50)), 3),
                                       "p95": round(float(np.percentile(secs, 95)), 3)}}
        hyps = {"whisper": judges.whisper_transcribe(audios), "ours": transcribe_recordings(audios, asr)}
        for k, h in hyps.items():
            err, words = utterance_errors(refs, h)        # refs: the words, directions and fillers out
            row[f"wer_{k}"] = {a: b for a, b in wer_ci(err, words).items() if a not in ("errors", "words")}
            row[f"fillers_{k}"] = filler_recall(tagged, h)
        row["dnsmos"] = stat_ci([judges.dnsmos(a) for a in audios])
        sims = [float(np.dot(judges.speaker_embedding(a), target) / np.linalg.norm(target)) for a in audios]
        row["speaker_similarity"] = stat_ci(sims)
        if reads_tags:
            rows = style_rows(speak, styles)
            row["style"] = realisation(rows)
            row["fidelity"] = from_rows(rows)              # per tag, on the held-out texts
        if training:
            row["training"] = training
        row["examples"] = [{"tagged": t, "whisper": h} for t, h in zip(tagged[:3], hyps["whisper"][:3])]
        res[name] = row
        print(f"bench tts: {name}: Whisper WER {row['wer_whisper']['value']:.3f}, DNSMOS "
              f"{row['dnsmos']['value']:.2f}, RTF {row['rtf']:.3f} ({time.time() - t0:.0f} s)", flush=True)
    tandem = _tandem(refs, res, ltts_dir)
    result = {"command": command, "n_texts": n, "n_style_texts": n_style, "seed": seed,
              "texts": "held-out response templates (responses.HELD_OUT)", "torch_threads": torch.get_num_threads(),
              "systems": res, "tandem": tandem, "seconds": round(time.time() - t0, 1)}
    save_bench(out_dir or Path("reports") / "bench" / time.strftime("%Y-%m-%d"), "bench_tts", result,
               results_dir=results_dir)
    return result
