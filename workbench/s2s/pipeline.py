"""The two speech-to-speech systems as a caller uses them, answering a request's audio:

- ``SpeechToSpeech``: request audio → codec codes → the LM (inner text, then speech codes) → the codec's decoder.
- ``Cascade``: streaming ASR → the repair room's graph parser → the dialogue grammar's answer → the LTTS. The
  cascade hears words, not mood, so it answers in its neutral delivery.

Both share a defined fallback: audio over ``MAX_REQUEST_S`` is a typed ``RequestError``. Audio with no speech
in it (silero-vad), and, in the cascade, a request the parser places in no known intent, get the spoken
``FALLBACK``. Generation is bounded (``max_text``, ``max_frames``).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..audio import MODEL_SAMPLE_RATE as SR
from . import data as D
from .dialogues import DialogueError, Frame, respond
from .layout import Layout
from .model import SpeechTextLM, generate



FALLBACK = "Sorry, I didn't catch that."
MAX_REQUEST_S = 10.0


class RequestError(ValueError):
    """Request audio the systems cannot take: not mono float audio at 16 kHz, empty, or over ``MAX_REQUEST_S``."""


def check_request(audio, sample_rate: int = SR, max_s: float = MAX_REQUEST_S) -> np.ndarray:
    if sample_rate != SR:
        raise RequestError(f"request audio must be {SR} Hz, got {sample_rate} (resample with workbench.audio.resample)")
    a = np.asarray(audio)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.floating):
        raise RequestError(f"request audio must be mono float samples, got shape {a.shape} dtype {a.dtype}")
    if len(a) == 0:
        raise RequestError("request audio is empty")
    if len(a) > max_s * SR:
        raise RequestError(f"request of {len(a) / SR:.1f} s is over the {max_s:g} s limit")
    if not np.isfinite(a).all():
        raise RequestError("request audio has NaN or infinite samples")
    return a.astype(np.float32)


_VAD = None


def has_speech(audio: np.ndarray, min_speech_s: float = 0.2) -> bool:
    """silero-vad finds at least ``min_speech_s`` of speech in the audio."""
    global _VAD
    from ..audio import load_silero_vad
    _VAD = _VAD or load_silero_vad()           # first: importing silero_vad sets torch's threads to 1, this restores them
    from silero_vad import get_speech_timestamps
    ts = get_speech_timestamps(torch.from_numpy(np.asarray(audio, np.float32)), _VAD, sampling_rate=SR)
    return sum(t["end"] - t["start"] for t in ts) >= min_speech_s * SR


def frames_from_graph(graph: str) -> list[Frame]:
    """The parser's graph (PENMAN) as dialogue frames: each frame's intent and its said fillers (a constant role:
    its concept with hyphens as spaces, as ``dialogues.meaning`` writes it). Unknown fillers are left out."""
    from ..repair.graph import decode
    from ..repair.repair import frame_vars
    from ..repair.graph import UNKNOWN
    g = decode(graph)
    inst = {v: c for v, _, c in g.instances()}
    vals = {v: t.strip('"') for v, r, t in g.attributes() if r == ":value"}
    out = []
    for fv in frame_vars(g):
        values = {}
        for s, r, t in g.edges():
            if s != fv or inst.get(t) == UNKNOWN:
                continue
            values.setdefault(r.lstrip(":"), vals.get(t, inst.get(t, "").replace("-", " ")))
        out.append(Frame(inst[fv], values))
    return out


# --- the speech-to-speech model -------------------------------------------------------------------------------
def prefix_tensors(lay: Layout, row: dict) -> tuple[torch.Tensor, torch.Tensor]:
    b = lay.build(D.s2s_prefix(lay, row))
    return torch.from_numpy(b["text"]), torch.from_numpy(b["audio"])


def answer(model: SpeechTextLM, tok, codec, row: dict, max_text: int = 48, max_frames: int = 150) -> dict:
    """The model's spoken answer to one coded request (``row["request_codes"]``): its inner text, 16 kHz audio,
    the seconds to the whole answer (``seconds``), and to its first playable frame, decoded (``first_audio_s``)."""
    t0 = time.perf_counter()
    text, audio = prefix_tensors(model.layout, row)
    if len(text) + max_text + max_frames + model.layout.n_q > model.body.config.max_position_embeddings:
        raise RequestError(f"a request of {row['request_codes'].shape[1]} frames leaves no room for a "
                           f"{max_frames}-frame answer in the model's {model.body.config.max_position_embeddings} positions")
    with torch.inference_mode():
        g = generate(model, text, audio, max_text=max_text, max_frames=max_frames)
    first = None
    if g["codes"].shape[1] > 0:
        t1 = time.perf_counter()
        codec.decode(g["codes"][:, :1])                         # the first frame alone, as a streaming player would
        first = g["first_frame_s"] + (time.perf_counter() - t1)
    words = tok.decode(g["text"], skip_special_tokens=True) if g["text"] else ""
    wav = codec.decode(g["codes"]) if g["codes"].shape[1] > 0 else np.zeros(0, np.float32)
    return {"text": words, "audio": wav, "frames": int(g["codes"].shape[1]), "truncated": g["truncated"],
            "seconds": time.perf_counter() - t0, "first_audio_s": first}


class SpeechToSpeech:
    """Request audio in, answer audio out, through one LM over the shared codec encoding."""

    name = "speech-to-speech"

    def __init__(self, model: SpeechTextLM, tok, codec, max_text: int = 48, max_frames: int = 150,
                 vad: bool = True, meta: dict | None = None):
        self.model, self.tok, self.codec, self.meta = model.eval(), tok, codec, meta or {}
        self.max_text, self.max_frames, self.vad = max_text, max_frames, vad
        self._fallback = None

    @classmethod
    def load(cls, folder=None, **kw) -> "SpeechToSpeech":
        from ..codec.model import load_codec
        from .recipe import MODELS, load
        model, tok, meta = load(folder or MODELS / "s2s")
        codec_dir = meta.get("config", {}).get("codec_dir")
        return cls(model, tok, load_codec(codec_dir) if codec_dir else load_codec(), meta=meta, **kw)

    def fallback(self) -> np.ndarray:
        """The fallback in the model's own voice and encoding: the assistant's rendering, through the codec."""
        if self._fallback is None:
            from ..tts.render import render_espeak
            self._fallback = self.codec.decode(self.codec.encode(render_espeak(f"[apologetic] {FALLBACK}").audio))
        return self._fallback

    def respond(self, audio, sample_rate: int = SR, task: str = "dialogue") -> dict:
        a = check_request(audio, sample_rate)
        t0 = time.perf_counter()
        if self.vad and not has_speech(a):
            return {"text": FALLBACK, "audio": self.fallback(), "fallback": True, "truncated": False,
                    "first_audio_s": time.perf_counter() - t0}
        codes = self.codec.encode(a)
        enc = time.perf_counter() - t0
        out = answer(self.model, self.tok, self.codec, {"request_codes": codes, "task": task},
                     self.max_text, self.max_frames)
        if out["first_audio_s"] is None:                     # the model said nothing: the fallback, not silence
            out.update(audio=self.fallback(), text=FALLBACK, fallback=True, first_audio_s=out["seconds"])
        else:
            out["fallback"] = False
        out["first_audio_s"] += enc
        out["encode_s"] = enc                               # part of the wait a streaming encoder would hide
        return out


# --- the cascade ------------------------------------------------------------------------------------------------
class Cascade:
    """Streaming ASR (the shipped NeMo model, largest lookahead) → the graph parser → the dialogue grammar's
    answer (neutral delivery: the cascade hears words only) → the LTTS."""

    name = "cascade"

    def __init__(self, asr_model=None, parser=None, tts=None, vad: bool = True, frame_ms: int = 30):
        from ..asr.streaming import StreamingRecognizer, trained_contexts
        from ..asr.shipped import load_shipped
        from ..repair.parser import load_parser
        from ..tts.ltts import load_synthesiser
        from ..tts.recipe import default_dir
        model = asr_model or load_shipped()
        largest = max(trained_contexts(model), key=lambda c: c[1])
        self.rec = StreamingRecognizer(model, largest)
        self.parser = parser or load_parser(device="cpu")
        self.tts = tts or load_synthesiser(default_dir("ltts"))
        self.vad, self.frame_ms = vad, frame_ms

    def understand(self, transcript: str) -> tuple[str, list[Frame]]:
        """(tagged answer, frames) of a transcript; the fallback when nothing is heard or no intent is known."""
        from ..repair.parser import UNKNOWN_SIGNATURE, ParseError
        if not transcript.strip():
            return FALLBACK, []
        try:
            p = self.parser.parse(transcript, threshold=self.parser.threshold_asr)
        except ParseError:
            return FALLBACK, []
        if p.signature == UNKNOWN_SIGNATURE:
            return FALLBACK, []
        frames = frames_from_graph(p.graph)
        try:
            return respond(frames), frames
        except DialogueError:                                  # a role the grammar needs was not heard
            return FALLBACK, frames

    def respond(self, audio, sample_rate: int = SR, task: str = "dialogue") -> dict:
        from ..events import Final
        a = check_request(audio, sample_rate)
        st = self.rec.new_stream("0")
        step = int(SR * self.frame_ms / 1000)
        for i in range(0, len(a), step):                       # what the recogniser did while the user spoke
            self.rec.accept_audio(st, a[i:i + step])
        t0 = time.perf_counter()                               # the request has ended
        fin = [e for e in self.rec.finalize(st) if isinstance(e, Final)]
        heard = fin[-1].text if fin else ""
        tagged, frames = (FALLBACK, []) if self.vad and not has_speech(a) else self.understand(heard)
        wav = self.tts.synthesise(tagged if tagged != FALLBACK else f"[apologetic] {FALLBACK}")
        first = time.perf_counter() - t0
        return {"text": tagged, "heard": heard, "audio": np.asarray(wav, np.float32), "fallback": tagged == FALLBACK,
                "truncated": False, "first_audio_s": first, "seconds": first}
