"""What the directedness classifier reads of an utterance, computed once and cached.

From the streaming recogniser, run as deployed (``endpoint.signals``): its encoder output over the utterance and
its final result (words and tokens). From the audio: prosody, the F0 contour (torchaudio's pitch detector) and the
energy contour over the speech the VAD heard, summarised. Requests come from a size's corpus, side talk from
``side_talk_corpus``; the label is the manifest's ``directed`` (absent: a request, directed).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

PROSODY = ("log energy mean", "log energy std", "F0 median", "F0 spread", "F0 slope, last 0.5 s", "voiced share",
           "speech seconds", "tokens per second")
CACHE = Path(__file__).resolve().parents[2] / "data" / "cache" / "looktotalk"


@dataclass
class Utterance:
    utt_id: str
    directed: bool
    kind: str                  # "request" or the side-talk kind
    delivery: str              # "request" or "conversational"
    text: str                  # the reference
    encoder: np.ndarray        # (frames, d) float16
    tokens: list               # the recogniser's final transcript, token ids
    prosody: np.ndarray        # len(PROSODY)
    duration: float
    transcript: str = ""       # the recogniser's final words
    speech_start: float = 0.0  # s into the recording
    # the utterance as heard part of the way through (the running score): name -> (s of audio heard, encoder
    # frames, tokens, words, prosody), e.g. "half": half of the speech heard, "end": the end of speech
    prefixes: dict = field(default_factory=dict)

    def heard(self, name: str) -> "Utterance":
        """This utterance as the classifier sees it at prefix ``name`` (the live path scores the same way)."""
        at, frames, toks, words, pros = self.prefixes[name]
        return replace(self, encoder=self.encoder[:max(1, frames)], tokens=list(toks), transcript=words,
                       prosody=pros, duration=at, prefixes={})


def prosody(audio: np.ndarray, vad_prob: np.ndarray, vad_hop: float, n_tokens: int, sr: int = 16000) -> np.ndarray:
    """Summaries of the energy and F0 contours over the speech the VAD heard (20 ms frames)."""
    import torch
    import torchaudio.functional as AF
    speech = np.flatnonzero(vad_prob > 0.5)
    a, b = (int(speech[0] * vad_hop * sr), int((speech[-1] + 1) * vad_hop * sr)) if len(speech) else (0, len(audio))
    x = audio[a:max(b, a + sr // 10)].astype(np.float32)
    hop = sr // 50
    frames = x[: len(x) // hop * hop].reshape(-1, hop)
    loge = np.log10(np.mean(frames ** 2, axis=1) + 1e-10)
    f0 = AF.detect_pitch_frequency(torch.from_numpy(x), sr, frame_time=0.02, win_length=5).numpy()
    voiced = loge[: len(f0)] > loge.max() - 2.5 if len(f0) else np.zeros(0, bool)   # within 25 dB of the peak
    fv = f0[: len(voiced)][voiced] if len(voiced) else np.zeros(0)
    secs = len(x) / sr
    tail = fv[-max(1, int(0.5 * 50 * max(voiced.mean() if len(voiced) else 1, 0.1))):] if len(fv) else np.zeros(0)
    slope = float(np.polyfit(np.arange(len(tail)), np.log(tail + 1e-3), 1)[0]) if len(tail) > 2 else 0.0
    return np.array([loge.mean(), loge.std(), np.log(np.median(fv) + 1) if len(fv) else 0.0,
                     (np.subtract(*np.percentile(np.log(fv + 1), [90, 10]))) if len(fv) > 2 else 0.0, slope,
                     float(voiced.mean()) if len(voiced) else 0.0, secs, n_tokens / max(secs, 0.1)], np.float32)


PREFIXES = {"half": 0.5, "end": 1.0}     # share of the speech heard when the running score is read


def heard_so_far(at: float, step_time, step_frames, step_tokens, audio, vad_prob, vad_hop, rec, sr: int = 16000):
    """What the recogniser and the audio say after ``at`` s: (at, encoder frames, tokens, words, prosody), from the
    last recogniser step that could have run by then. The live widget and the bench's running score both call it."""
    k = int(np.searchsorted(np.asarray(step_time), at, side="right")) - 1
    frames = int(step_frames[k]) if k >= 0 else 0
    toks = [t for t in (step_tokens[k] if k >= 0 else []) if t < rec.vocab_size]
    words = rec.text(toks).replace("<EOU>", " ").strip() if toks else ""
    n = int(at * sr)
    vp = np.asarray(vad_prob)[: max(1, int(at / vad_hop))]
    return at, frames, toks, words, prosody(np.asarray(audio)[:n], vp, vad_hop, len(toks), sr)


def compute(rec, entries: list[dict], audios: list[np.ndarray], batch: int = 32) -> list[Utterance]:
    from ..endpoint.signals import compute_signals
    out = []
    tok = rec.tokenizer
    for s, e, a in zip(compute_signals(rec, entries, audios, batch), entries, audios):
        # the stream's final result: its partials restart after each end-of-utterance token
        toks = [t for t in s.final_tokens if t < tok.vocab_size]
        enc = s.encoder if s.encoder is not None else np.zeros((1, 1), np.float16)
        kind = e["domain"].split(":", 1)[1] if str(e.get("domain", "")).startswith("side talk:") else "request"
        t0, t1 = float(e.get("speech_start", 0.0)), float(e.get("speech_end", len(a) / 16000))
        pre = {name: heard_so_far(t0 + f * (t1 - t0), s.step_time, s.step_frames, s.tokens, a, s.vad_prob, s.vad_hop, rec)
               for name, f in PREFIXES.items()}
        out.append(Utterance(s.utt_id, bool(e.get("directed", True)), kind, e.get("delivery", "request"), e["text"],
                             enc, toks, prosody(a, s.vad_prob, s.vad_hop, len(toks)), len(a) / 16000,
                             s.final_text.replace("<EOU>", " ").strip(), t0, pre))
    return out


def split_features(corpus: Path, side_talk: Path, split: str, n: int | None = None, rec=None, cache: bool = True,
                   log=print, model_path=None, after_speech_s: float = 1.0) -> list[Utterance]:
    """Requests of ``corpus``'s split and side talk of ``side_talk``'s, the first ``n`` of each (all: None),
    each recording continued to ``after_speech_s`` after its speech (the streaming recogniser emits its last
    words that much later: an end-pointer waits as long), by the recogniser ``rec`` loaded from ``model_path`` (default the
    shipped one); cached under data/cache/looktotalk, keyed by the manifests' and the model's bytes."""
    import pickle

    from ..data import open_dataset
    from ..audio import extend_after_speech
    import hashlib
    from ..asr.recipe import MODELS
    model_path = Path(model_path or MODELS / "asr_small" / "model.nemo")
    digest = hashlib.sha1(b"".join([(Path(r) / f"{split}.json").read_bytes() for r in (corpus, side_talk)]
                                   + [model_path.read_bytes()])).hexdigest()
    key = CACHE / f"{Path(corpus).name}+{Path(side_talk).name}-{split}-{n}-{after_speech_s:g}s-{digest[:10]}-v3.pkl"
    if cache and key.exists():
        return pickle.loads(key.read_bytes())
    if rec is None:
        from ..asr.recipe import default_recognizer
        rec, _, _ = default_recognizer(model_path, (70, 1))
    out, t0 = [], time.time()
    for root in (corpus, side_talk):
        ds = open_dataset(root, split)
        idx = range(min(n or len(ds), len(ds)))
        entries = [ds.entries[i] for i in idx]
        audios = [extend_after_speech(ds.audio(i), float(ds.entries[i]["speech_end"]), after_speech_s)[
            : int((float(ds.entries[i]["speech_end"]) + after_speech_s) * 16000)] for i in idx]
        out += compute(rec, entries, audios)
        log(f"[looktotalk] {split}: {len(out)} utterances in {time.time() - t0:.0f} s")
    if cache:
        key.parent.mkdir(parents=True, exist_ok=True)
        tmp = key.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(out))
        tmp.replace(key)
    return out


def domain_scores(lm, texts: list[str], empty: float = -12.0) -> np.ndarray:
    """Mean token log-probability of each transcript under the domain LM (with its end symbol: a request ends as
    requests do): side talk is not what the assistant's language sounds like. An empty transcript gets ``empty``."""
    from ..lm.score import score_texts
    keep = [i for i, t in enumerate(texts) if t.split()]
    out = np.full(len(texts), empty, np.float32)
    if keep:
        out[keep] = [s.mean for s in score_texts(lm, [texts[i] for i in keep], eos=True, batch_size=64)]
    return out
