"""``python -m workbench bench codec``: what survives the learned encoding, judged by models nobody here trained.

Clean test utterances (every synthesiser and speaker the test split has, none trained on) go through each
system and back to audio; each rendering is judged against the original:
- intelligibility: Whisper tiny.en WER and our ASR's WER (same normalisation), the paired difference from the
  original's WER with its bootstrap interval (goal: at most +3 points);
- quality: DNSMOS P.835 overall; speaker similarity (GE2E cosine to the original); F0 correlation;
- cost: bitrate, frame rate, and the real-time factor of encode + decode on this machine.
Systems: the original; WORLD analysis-synthesis with nothing quantised (the ceiling of the parameter space);
the codec with all codebooks and with the semantic codebook alone; the SoundStream peer (same rate, same
budget). Every rate has a 95 % interval.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import judges
from ..asr.shipped import load_shipped, transcribe_recordings
from ..stats import paired_wer_diff_ci, stat_ci
from . import world


def test_set(corpus_size: str = "default", split: str = "test", n: int = 100, seed: int = 0):
    """``n`` clean utterances of ``split`` (seeded choice): entries, audio, reference texts."""
    from ..data import ensure_corpus, is_clean, open_dataset
    ds = open_dataset(ensure_corpus(corpus_size), split).filter(is_clean)
    rng = np.random.default_rng(seed)
    idx = sorted(rng.choice(len(ds), min(n, len(ds)), replace=False))
    return [ds.entries[i] for i in idx], [ds.audio(int(i)) for i in idx], [ds.entries[i]["text"] for i in idx]


def judge(refs: list[str], originals: list[np.ndarray], rendered: list[np.ndarray], asr_model=None,
          orig_errors: dict | None = None, mos: bool = True) -> dict:
    """Every judge's verdict on one system's renderings of ``originals`` (same order as ``refs``)."""
    from ..asr.scoring import utterance_errors
    from ..stats import wer_ci
    row: dict = {}
    for name, hyps in (("whisper", judges.whisper_transcribe(rendered)), ("ours", transcribe_recordings(rendered, asr_model))):
        err, words = utterance_errors(refs, hyps)
        row[f"wer_{name}"] = {k: v for k, v in wer_ci(err, words).items() if k not in ("errors", "words")}
        row[f"_errors_{name}"] = (err, words)
        if orig_errors is not None:
            d = paired_wer_diff_ci(err, orig_errors[name][0], words)
            row[f"wer_{name}_minus_original"] = d
    if mos:
        row["dnsmos"] = stat_ci([judges.dnsmos(a) for a in rendered])
    if orig_errors is not None:
        row["speaker_similarity"] = stat_ci([judges.speaker_similarity(o, r) for o, r in zip(originals, rendered)])
        f0 = np.array([judges.f0_correlation(o, r) for o, r in zip(originals, rendered)])
        row["f0_correlation"] = stat_ci(f0[np.isfinite(f0)])
    return row


def timed(fn, audios: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """Renderings and the real-time factor of producing them (encode + decode, this process's threads)."""
    t0 = time.perf_counter()
    out = [fn(a) for a in audios]
    return out, (time.perf_counter() - t0) / (sum(len(a) for a in audios) / world.SAMPLE_RATE)


def run(n: int = 100, corpus_size: str = "default", split: str = "test", codec_dir=None, peer_dir=None,
        out_dir=None, results_dir=None, seed: int = 0, command: str = "python -m workbench bench codec") -> dict:
    import torch
    from ..asr.recipe import MODELS
    from ..hub import ModelNotAvailableError
    from ..results import save_bench
    from .model import load_codec
    from .soundstream import SoundStreamCodec
    codec = load_codec(codec_dir)
    asr = load_shipped()
    entries, audios, refs = test_set(corpus_size, split, n, seed)
    systems: dict = {}
    t0 = time.time()
    orig = judge(refs, audios, audios, asr)
    orig_err = {k: orig.pop(f"_errors_{k}") for k in ("whisper", "ours")}
    systems["original"] = {**orig, "bitrate_bps": 256000, "frame_rate_hz": None, "rtf": 0.0}
    renders = {
        "WORLD analysis-synthesis (nothing quantised)": (lambda a: world.synthesise(world.analyse(a))[: len(a)],
                                                          None, 100.0),
        f"codec, {codec.cfg.n_q} codebooks": (codec.resynthesise, codec.cfg.bitrate, codec.cfg.frame_rate),
        "codec, semantic codebook alone": (lambda a: codec.resynthesise(a, n_q=1),
                                           codec.cfg.bitrate / codec.cfg.n_q,
                                           codec.cfg.frame_rate),
    }
    try:
        peer = SoundStreamCodec.load(peer_dir)
        renders[f"peer: ESPnet SoundStream, {peer.cfg.n_q} codebooks"] = (peer.resynthesise, peer.bitrate,
                                                                         peer.frame_rate)
    except ModelNotAvailableError as e:
        print(f"bench codec: no SoundStream peer ({e})")
    for name, (fn, bps, fr) in renders.items():
        out, rtf = timed(fn, audios)
        row = judge(refs, audios, out, asr, orig_err)
        row.pop("_errors_whisper"), row.pop("_errors_ours")
        systems[name] = {**row, "bitrate_bps": bps, "frame_rate_hz": fr, "rtf": round(rtf, 4)}
        print(f"bench codec: {name}: Whisper WER {row['wer_whisper']['value']:.3f}, "
              f"DNSMOS {row['dnsmos']['value']:.2f} ({time.time() - t0:.0f} s)", flush=True)
    import json
    meta = json.loads((Path(codec_dir or (MODELS / "codec")) / "codec.json").read_text())
    main = f"codec, {codec.cfg.n_q} codebooks"
    d = systems[main]["wer_whisper_minus_original"]
    result = {"command": command, "split": split, "n_utterances": len(refs), "clean_only": True, "seed": seed,
              "audio_s": round(sum(len(a) for a in audios) / world.SAMPLE_RATE, 1),
              "codec": {k: meta[k] for k in ("config", "frame_rate_hz", "bitrate_bps", "training") if k in meta},
              "torch_threads": torch.get_num_threads(), "systems": systems,
              "goals": {"frame_rate_hz<=25": codec.cfg.frame_rate <= 25, "bitrate_bps<=2000": codec.cfg.bitrate <= 2000,
                        "whisper_wer_delta<=+3 points": d["value"] <= 0.03,
                        "whisper_wer_delta": d},
              "seconds": round(time.time() - t0, 1)}
    save_bench(out_dir or Path("reports") / "bench" / time.strftime("%Y-%m-%d"), "bench_codec", result,
               results_dir=results_dir)
    return result
