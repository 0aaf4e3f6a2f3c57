"""Offline speech synthesis with espeak-ng, through its C library so that word times come for free.

espeak-ng reports a WORD event with the sample position of every word it speaks (synchronous mode).
We synthesise each stretch of speech between two pauses separately, trim its edges, and place it on
the utterance timeline ourselves: the start and end of every word, every pause and the true end of
speech are then known by construction, not estimated.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import re
import threading
from dataclasses import dataclass

import numpy as np

ESPEAK_RATE = 22_050   # espeak-ng's native output rate

# Voices: espeak-ng's built-in English voices (the MBROLA ones need data that Debian does not ship).
VOICES = ["en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
          "en-us-nyc"]
# Variants change the timbre (formants, breathiness); the novelty robots and effects are left out.
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "adam", "Alex",
            "Alicia", "Andrea", "Andy", "Annie", "antonio", "aunty", "belinda", "benjamin", "boris", "caleb",
            "david", "Denis", "Diogo", "ed", "edward", "edward2", "Gene", "Gene2", "gustave", "Henrique", "Hugo",
            "iven", "iven2", "iven3", "iven4", "Jacky", "john", "kaukovalta", "Lee", "linda", "marcelo", "Marco",
            "Mario", "max", "Michael", "michel", "miguel", "Mike", "Nguyen", "pablo", "paul", "pedro", "quincy",
            "rob", "robert", "steph", "steph2", "steph3", "Storm", "zac", "anika", "grandpa", "grandma",
            "klatt", "klatt2", "klatt3", "klatt4", "norbert", "sandro", "shelby", "travis", "victor", "croak",
            "whisper", "whisperf"]


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker. espeak-ng: voice (accent rules) + variant (timbre) + rate (wpm) + pitch (0-99).
    Other engines (engines.py): voice + rate and pitch in percent of the voice's own (variant unused)."""
    voice: str
    variant: str
    rate: int
    pitch: int
    engine: str = "espeak"

    @property
    def id(self) -> str:
        if self.engine == "espeak":
            return f"{self.voice}+{self.variant}-r{self.rate}-p{self.pitch}"
        return f"{self.engine}:{self.voice}-r{self.rate}-p{self.pitch}"

    @classmethod
    def from_id(cls, sid: str) -> "Speaker":
        if ":" in sid.split("+", 1)[0]:
            eng, rest = sid.split(":", 1)
            voice, r, p = rest.rsplit("-", 2)
            return cls(voice, "", int(r[1:]), int(p[1:]), eng)
        name, rest = sid.split("+", 1)
        variant, r, p = rest.rsplit("-", 2)
        return cls(name, variant, int(r[1:]), int(p[1:]))


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_EV_END, _EV_WORD, _EV_PHONEME = 0, 1, 7
_INIT_PHONEME_EVENTS = 0x0001
_AUDIO_OUTPUT_SYNCHRONOUS, _POS_CHARACTER = 2, 1
_CHARS_UTF8, _SSML = 0x01, 0x10            # espeak_Synth flags: the text is UTF-8; it is SSML markup
_PARAM_RATE, _PARAM_PITCH = 1, 3


class SynthesisError(RuntimeError):
    """espeak-ng is missing or refused the request."""


class Espeak:
    """One espeak-ng engine per process (the library keeps global state; not thread-safe)."""

    _lock = threading.Lock()

    def __init__(self) -> None:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        try:
            self.lib = ctypes.CDLL(name)
        except OSError as e:
            raise SynthesisError("libespeak-ng not found: install the Debian package espeak-ng "
                                 "(make setup does this)") from e
        sr = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INIT_PHONEME_EVENTS)
        if sr != ESPEAK_RATE:
            raise SynthesisError(f"espeak_Initialize failed or returned an unexpected rate ({sr})")
        self._chunks: list[np.ndarray] = []
        self._words: list[tuple[int, int]] = []   # (text_position, sample)
        self._phonemes: list[tuple[int, str]] = []  # (sample where a phoneme starts, its espeak-ng mnemonic)
        self._cb = _CALLBACK(self._on_audio)      # keep a reference: ctypes would free it
        self.lib.espeak_SetSynthCallback(self._cb)

    def _on_audio(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EV_END:
            if events[i].type == _EV_WORD:
                self._words.append((events[i].text_position, events[i].sample))
            elif events[i].type == _EV_PHONEME:
                self._phonemes.append((events[i].sample, events[i].id.decode("ascii", "replace")))
            i += 1
        return 0

    def speak(self, text: str, speaker: Speaker, ssml: bool = False) -> tuple[np.ndarray, list[int]]:
        """Waveform (float32, 22.05 kHz) and the start sample of each whitespace-separated word (with ``ssml``:
        of each word outside the markup; espeak-ng reports positions in the marked-up text)."""
        wav, starts, _ = self.speak_aligned(text, speaker, ssml)
        return wav, starts

    def speak_aligned(self, text: str, speaker: Speaker, ssml: bool = False
                      ) -> tuple[np.ndarray, list[int], list[tuple[int, str]]]:
        """``speak`` plus every phoneme espeak-ng spoke: (start sample, mnemonic), pauses ``_``/``_:`` included.
        A synthesiser's front end (G2P) and its phoneme-level duration targets, with no aligner."""
        with self._lock:
            voice = f"{speaker.voice}+{speaker.variant}".encode()
            if self.lib.espeak_SetVoiceByName(voice) != 0:
                raise SynthesisError(f"espeak-ng has no voice {voice.decode()!r}")
            self.lib.espeak_SetParameter(_PARAM_RATE, speaker.rate, 0)
            self.lib.espeak_SetParameter(_PARAM_PITCH, speaker.pitch, 0)
            self._chunks, self._words, self._phonemes = [], [], []
            data = text.encode()
            flags = _SSML | _CHARS_UTF8 if ssml else 0
            self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, flags, None, None)
            self.lib.espeak_Synchronize()
            chunks, events, phonemes = self._chunks, self._words, self._phonemes
        wav = (np.concatenate(chunks) if chunks else np.zeros(0, np.int16)).astype(np.float32) / 32768.0
        if ssml:    # tags become spaces, entities one character and spaces: positions still match the events
            text = re.sub(r"<[^>]*>|&\w+;", lambda m: (m.group(0)[0] if m.group(0)[0] == "&" else " ")
                          + " " * (len(m.group(0)) - 1), text)
        return wav, _word_starts(text, events, sorted({p for p, _ in phonemes}), len(wav)), phonemes


def _word_starts(text: str, events: list[tuple[int, int]], phonemes: list[int], n: int) -> list[int]:
    """Start sample of each whitespace word of ``text``.

    espeak-ng speaks some function-word runs as one word ("on the" -> [O2nD@2]) and reports one WORD
    event for the run. Such a run is split in proportion to the words' lengths in characters, snapped to
    the nearest phoneme boundary, so every word gets a non-empty span.
    """
    char_starts = [i for i, c in enumerate(text) if c != " " and (i == 0 or text[i - 1] == " ")]
    by_char = {pos - 1: sample for pos, sample in events}
    groups: list[list[int]] = []          # indices of words sharing one WORD event
    for k, c in enumerate(char_starts):
        if c in by_char or not groups:
            groups.append([k])
        else:
            groups[-1].append(k)
    starts = [0] * len(char_starts)
    for g, members in enumerate(groups):
        s0 = by_char.get(char_starts[members[0]], 0)
        end = by_char.get(char_starts[groups[g + 1][0]], n) if g + 1 < len(groups) else n
        starts[members[0]] = s0
        if len(members) == 1:
            continue
        lengths = [len(text[char_starts[k]:].split(" ", 1)[0]) for k in members]
        inner = [p for p in phonemes if s0 < p < end]
        prev = s0
        for j in range(1, len(members)):
            target = s0 + (end - s0) * sum(lengths[:j]) / sum(lengths)
            cands = [p for p in inner if p > prev]
            b = min(cands, key=lambda p: abs(p - target)) if cands else int(target)
            starts[members[j]] = prev = max(b, prev + 1)
    return starts


_ENGINE: Espeak | None = None


def engine() -> Espeak:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = Espeak()
    return _ENGINE


def speech_bounds(x: np.ndarray, sr: int, threshold_db: float = -40.0, win_s: float = 0.005) -> tuple[int, int]:
    """First and last sample of the region above ``threshold_db`` re the peak (5 ms RMS windows)."""
    win = max(1, int(win_s * sr))
    n = len(x) // win
    if n == 0:
        return 0, len(x)
    rms = np.sqrt((x[: n * win].reshape(n, win) ** 2).mean(axis=1) + 1e-12)
    active = np.flatnonzero(20 * np.log10(rms / (rms.max() + 1e-12)) > threshold_db)
    if active.size == 0:
        return 0, len(x)
    return int(active[0] * win), int(min(len(x), (active[-1] + 1) * win))


def synthesise(text: str, speaker: Speaker) -> tuple[np.ndarray, int, list[int] | None]:
    """Waveform at the engine's own rate, and each word's start sample where the engine reports it."""
    if speaker.engine == "espeak":
        wav, starts = engine().speak(text, speaker)
        return wav, ESPEAK_RATE, starts
    from .engines import get_engine
    return get_engine(speaker.engine).speak(text, speaker.voice, speaker.rate, speaker.pitch)


def speak_piece(text: str, speaker: Speaker, sr_out: int | None = None) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """A stretch of speech trimmed to its voiced region (at ``sr_out``, default the engine's rate for
    espeak-ng and 16 kHz otherwise), and (start, end) seconds of each word in it.

    A word ends where the next one starts (the engine's boundary); the last ends at the trimmed edge.
    Engines that report no word times get them from CTC forced alignment (align.py).
    """
    from ..audio import MODEL_SAMPLE_RATE, resample
    wav, sr, starts = synthesise(text, speaker)
    lo, hi = speech_bounds(wav, sr)
    wav = wav[lo:hi]
    sr_out = sr_out or (ESPEAK_RATE if speaker.engine == "espeak" else MODEL_SAMPLE_RATE)
    if sr != sr_out:
        wav = resample(wav, sr, sr_out)
        starts = None if starts is None else [int(s * sr_out / sr) for s in starts]
        lo = int(lo * sr_out / sr)
    n_words = len(text.split())
    if starts is None or len(starts) != n_words:
        from .align import aligner
        w16 = wav if sr_out == MODEL_SAMPLE_RATE else resample(wav, sr_out, MODEL_SAMPLE_RATE)
        return wav, aligner().word_times(w16, text.split())
    starts = [min(max(s - lo, 0), len(wav)) for s in starts]
    starts[0] = 0
    ends = starts[1:] + [len(wav)]
    times = [(s / sr_out, max(e, s) / sr_out) for s, e in zip(starts, ends)]
    return wav, times
