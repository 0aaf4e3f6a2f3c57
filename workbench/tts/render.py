"""Rendering tagged text with a synthesiser's own controls: the expressive corpus's ground truth and the bench's
espeak-ng row.

The assistant's target voice is one espeak-ng speaker of the corpus's training split. A tagged text is cut into
``pieces`` (styles.py); each piece is spoken through espeak-ng's SSML ``<prosody>`` (rate, pitch, range, volume;
whisper is espeak-ng's ``whisper`` variant, not markup), trimmed to its speech, and placed on the timeline with
the requested pauses and a short gap where the delivery changes. Every word's start and end come from espeak-ng's
WORD events and every phoneme's from its PHONEME events, so the corpus knows where each tag and each phoneme starts
and ends without an aligner.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..audio import MODEL_SAMPLE_RATE, resample
from ..data.synth import ESPEAK_RATE, Speaker, engine, speech_bounds
from .styles import Piece, Style, parse, piece_ssml, pieces

# The assistant's voice: of the default corpus's training-split espeak-ng speakers, the one DNSMOS rates highest on
# held-out responses (2.84 on 16, Whisper WER 22.8 %; en-us+steph, the first choice: 2.35 and 29.1 %).
TARGET = Speaker("en-gb-x-gbclan", "Hugo", 154, 45)
WHISPER_VARIANT = "whisper"
GAP_MS = 80                                     # between pieces without a requested pause


@dataclass
class Rendering:
    """16 kHz audio with the time of every word and every piece (seconds)."""
    audio: np.ndarray
    words: list[tuple[str, float, float]] = field(default_factory=list)
    pieces: list[tuple[Piece, float, float]] = field(default_factory=list)
    phonemes: list[tuple[str, float]] = field(default_factory=list)     # espeak-ng mnemonic, start (s)
    sample_rate: int = MODEL_SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


def render_espeak(tagged: str, speaker: Speaker = TARGET, base: Style | None = None) -> Rendering:
    """Speak a tagged text (styles.py syntax) in ``speaker``'s voice. ``base`` scales every piece's style (an
    utterance-level style, drawn for variety in the training data)."""
    from dataclasses import replace
    sr = MODEL_SAMPLE_RATE
    out, words, spans, phones, t = [], [], [], [], 0
    for k, p in enumerate(pieces(parse(tagged))):
        if base is not None:
            p = replace(p, style=replace(p.style, rate=p.style.rate * base.rate / 100,
                                         pitch=p.style.pitch * base.pitch / 100, range=p.style.range * base.range / 100,
                                         volume=p.style.volume * base.volume / 100, whisper=p.style.whisper or base.whisper))
        spk = replace(speaker, variant=WHISPER_VARIANT) if p.style.whisper else speaker
        wav, starts, ph = engine().speak_aligned(piece_ssml(p), spk, ssml=True)
        lo, hi = speech_bounds(wav, ESPEAK_RATE)
        x = resample(wav[lo:hi], ESPEAK_RATE, sr)
        if len(starts) != len(p.words):
            raise RuntimeError(f"espeak-ng reported {len(starts)} word starts for {len(p.words)} words: {p.words}")
        st = [min(max(0, int((s - lo) * sr / ESPEAK_RATE)), len(x)) for s in starts]
        st[0] = 0
        ends = st[1:] + [len(x)]
        words += [(w, (t + a) / sr, (t + max(a, b)) / sr) for w, a, b in zip(p.words, st, ends)]
        spans.append((p, t / sr, (t + len(x)) / sr))
        phones += [(name, (t + min(max(0, int((s - lo) * sr / ESPEAK_RATE)), len(x))) / sr) for s, name in ph]
        gap = p.pause_ms or GAP_MS
        out += [x, np.zeros(int(sr * gap / 1000), np.float32)]
        t += len(x) + int(sr * gap / 1000)
    audio = np.concatenate(out[:-1]).astype(np.float32)      # no silence after the last piece
    return Rendering(audio, words, spans, phones)
