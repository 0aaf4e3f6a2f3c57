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
    from ..repair.repair import _frame_vars
    from ..repair.graph import UNKNOWN
    g = decode(graph)
    inst = {v: c for v, _, c in g.instances()}
    vals = {v: t.strip('"') for v, r, t in g.attributes() if r == ":value"}
    out = []
    for fv in _frame_vars(g):
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
        from ..asr.streaming import StreamingRecognizer
        from ..codec.bench import _shipped_asr
        from ..repair.parser import load_parser
        from ..tts.ltts import load_synthesiser
        from ..tts.recipe import default_dir
        model = asr_model or _shipped_asr()
        largest = max((list(c) for c in model.encoder.att_context_size_all), key=lambda c: c[1])
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


# --- one accounting ----------------------------------------------------------------------------------------------
def arousal(audios: list[np.ndarray], norm: tuple | None = None) -> tuple[np.ndarray, tuple]:
    """An arousal index per recording: the mean z-score of median F0, F0 range (semitones) and energy (dB), the
    three cues that rise with arousal. ``norm`` (means, stds) is taken from the recordings themselves unless
    given. Returns (index, norm)."""
    from ..tts.prosody import measure
    if not len(audios):
        return np.zeros(0), norm if norm is not None else (np.zeros(3), np.ones(3))
    m = []
    for a in audios:
        try:
            d = measure(a)
            m.append([d["f0_st"], d["range_st"], d["energy_db"]])
        except ValueError:                                     # under 50 ms: no prosody to speak of
            m.append([np.nan] * 3)
    m = np.array(m, float)
    if norm is None:
        norm = (np.nanmean(m, 0), np.nanstd(m, 0) + 1e-6)
    z = (m - norm[0]) / norm[1]
    return np.nan_to_num(np.nanmean(z, 1), nan=0.0), norm


def prosody_following(req: np.ndarray, resp: np.ndarray, moods: list[str], threshold: float) -> dict:
    """Spearman ρ between request and response arousal (paired bootstrap interval), and the share of excited
    requests whose answer is over ``threshold`` (the midpoint between the reference answers to excited and to
    neutral requests)."""
    from scipy.stats import spearmanr

    from ..stats import paired_ci, rate_ci
    rho = paired_ci((req, resp), lambda x, y: float(spearmanr(x, y).statistic) if np.std(y) > 0 else 0.0)
    exc = [r > threshold for r, m in zip(resp, moods) if m == "excited"]
    return {"spearman": rho, "excited_answered_excitedly": rate_ci(sum(exc), len(exc))}


def score(outs: list[dict], rows: list[dict], req_arousal: np.ndarray, norm: tuple, threshold: float,
          target: np.ndarray, latency: bool = True) -> dict:
    """One system's answers (``outs``, one per row) through the whole accounting."""
    from .. import judges
    from ..asr.scoring import utterance_errors
    from ..stats import rate_ci, stat_ci, wer_ci
    from .judge import task_success
    silent = np.zeros(SR // 10, np.float32)
    audios = [o["audio"] if len(o["audio"]) >= SR // 10 else silent for o in outs]
    heard = judges.whisper_transcribe(audios)
    judged = [task_success(h, r) for h, r in zip(heard, rows)]
    dlg = [i for i, r in enumerate(rows) if r["task"] == "dialogue"]
    tr = [i for i, r in enumerate(rows) if r["task"] != "dialogue"]
    # Whisper tiny.en judges English: the WER is over the dialogue turns; translations are judged by task success
    e, w = utterance_errors([rows[i]["response_text"] for i in dlg], [heard[i] for i in dlg])
    resp_arousal, _ = arousal([audios[i] for i in dlg], norm)
    res = {"n": len(rows), "wer_whisper": {k: v for k, v in wer_ci(e, w).items()},
           "task_success": rate_ci(sum(judged[i]["success"] for i in dlg), len(dlg)),
           "values_said": rate_ci(sum(judged[i]["values"] for i in dlg), len(dlg)),
           "translation_success": rate_ci(sum(judged[i]["success"] for i in tr), len(tr)),
           "prosody": prosody_following(req_arousal[dlg], resp_arousal, [rows[i]["arousal"] for i in dlg], threshold),
           "dnsmos": stat_ci([judges.dnsmos(a) for a in audios]),
           "speaker_similarity": stat_ci([float(np.dot(judges.speaker_embedding(a), target) / np.linalg.norm(target))
                                          for a in audios]),
           "fallbacks": rate_ci(sum(bool(o.get("fallback")) for o in outs), len(outs)),
           "truncated": rate_ci(sum(bool(o.get("truncated")) for o in outs), len(outs))}
    if latency:
        secs = [o["first_audio_s"] for o in outs]
        res["first_audio_s"] = {"p50": float(np.percentile(secs, 50)), "p95": float(np.percentile(secs, 95)),
                                "mean": stat_ci(secs)}
        if any("encode_s" in o for o in outs):
            res["encode_s_p50"] = float(np.median([o.get("encode_s", 0.0) for o in outs]))
    if outs and "heard" in outs[0]:                         # the cascade's own transcript of the request
        ea, wa = utterance_errors([r["text"] for r in rows], [o["heard"] for o in outs])
        res["request_asr_wer"] = wer_ci(ea, wa)
    if outs and "text" in outs[0]:
        inner = [task_success(outs[i]["text"], rows[i])["success"] for i in dlg]
        res["text_task_success"] = rate_ci(sum(inner), len(dlg))      # what it meant to say, before speech
    res["examples"] = [{"request": r["text"], "arousal": r["arousal"], "reference": r["response_tagged"],
                        "said": o.get("text", ""), "heard": h} for r, o, h in list(zip(rows, outs, heard))[:6]]
    return res


def evaluate(model: SpeechTextLM, tok, codec, rows: list[dict], max_frames: int = 150) -> dict:
    """The model's answers to coded requests (no audio needed), scored by Whisper and the task-success judge:
    the quick check the recipe and the tests use; ``run`` is the whole bench."""
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


def run(n: int = 48, model_dir=None, stages_dir=None, rows: list[dict] | None = None, cascade: Cascade | None = None,
        out_dir=None, results_dir=None, seed: int = 0, ablation: bool = True,
        command: str = "python -m workbench bench s2s") -> dict:
    """Every system on the same ``n`` held-out turns (``data.prepare("test", n)``; ``rows`` to pass others)."""
    from .. import judges
    from ..audio import load_audio
    from ..reports import save_bench
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
