"""Stage directions: the tags that say how a response should be delivered, and what each one asks of the voice.

A tagged text is plain words with bracketed directions, as the tagger writes them and the large TTS reads them:
``[excited] Your package arrived early! [pause] Want me to read the note?``. Two kinds:
- **delivery** tags (``DELIVERIES``) hold from where they stand to the next delivery tag; each is a ``Style``:
  speaking rate, pitch level, pitch range and volume in percent of the voice's neutral, and whisper;
- **event** tags (``EVENTS``) happen where they stand: a pause, a filler ("um", "uh"), a laugh-like interjection.
Requested values are explicit numbers so that a bench can correlate what was asked with what was measured.
``parse`` turns a tagged text into ``Segment``s with typed errors for what cannot be spoken; ``to_ssml`` renders
segments as the SSML espeak-ng obeys (the training data's ground truth).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace

MAX_CHARS = 600


class StageDirectionError(ValueError):
    """A tagged text that cannot be spoken as asked (empty, too long, an unknown tag, another script)."""


@dataclass(frozen=True)
class Style:
    rate: float = 100.0       # % of neutral speaking rate
    pitch: float = 100.0      # % of neutral pitch level
    range: float = 100.0      # % of neutral pitch range
    volume: float = 100.0     # % of neutral amplitude
    whisper: bool = False

    def values(self) -> dict:
        return {"rate": self.rate, "pitch": self.pitch, "range": self.range, "volume": self.volume,
                "whisper": float(self.whisper)}


DELIVERIES: dict[str, Style] = {
    "neutral": Style(),
    "excited": Style(rate=112, pitch=118, range=170, volume=120),
    "curious": Style(rate=100, pitch=110, range=140, volume=100),
    "apologetic": Style(rate=85, pitch=92, range=60, volume=75),
    "calm": Style(rate=85, pitch=95, range=70, volume=90),
    "serious": Style(rate=92, pitch=88, range=55, volume=105),
    "whisper": Style(rate=90, pitch=100, range=80, volume=60, whisper=True),
    "fast": Style(rate=140),
    "slow": Style(rate=70),
    "loud": Style(volume=150),
    "soft": Style(volume=60),
    "high": Style(pitch=125),
    "low": Style(pitch=80),
}
EVENTS: dict[str, str] = {"pause": "", "um": "um", "uh": "uh", "laugh": "ha ha", "breath": ""}
PAUSE_MS = {"pause": 450, "breath": 200}
TAG = re.compile(r"\[([^\[\]]*)\]")


@dataclass
class Segment:
    """Words said in one delivery, with the events that fall among them (index: before which word)."""
    delivery: str
    style: Style
    words: list[str] = field(default_factory=list)
    events: list[tuple[int, str]] = field(default_factory=list)


def _check_text(text: str) -> str:
    if not isinstance(text, str):
        raise StageDirectionError(f"text must be a string, got {type(text).__name__}")
    text = unicodedata.normalize("NFKC", text).strip()
    if not TAG.sub("", text).strip():
        raise StageDirectionError("nothing to say: the text is empty (or only tags)")
    if len(text) > MAX_CHARS:
        raise StageDirectionError(f"text is {len(text)} characters; at most {MAX_CHARS} per call (split it into "
                                  "sentences)")
    foreign = sorted({c for c in TAG.sub("", text) if c.isalpha() and not ("LATIN" in unicodedata.name(c, ""))})
    if foreign:
        raise StageDirectionError(f"English voices only: characters from another script {''.join(foreign[:8])!r}")
    return text


def parse(text: str) -> list[Segment]:
    """Tagged text -> segments. Unknown tags, empty and over-long text, and other scripts are typed errors."""
    text = _check_text(text)
    segs = [Segment("neutral", DELIVERIES["neutral"])]
    pos = 0
    for m in list(TAG.finditer(text)) + [None]:
        chunk = text[pos: m.start() if m else len(text)]
        segs[-1].words += chunk.split()
        if m is None:
            break
        pos = m.end()
        name = m.group(1).strip().lower()
        if name in DELIVERIES:
            if segs[-1].words or segs[-1].events:
                segs.append(Segment(name, DELIVERIES[name]))
            else:
                segs[-1] = Segment(name, DELIVERIES[name])
        elif name in EVENTS:
            segs[-1].events.append((len(segs[-1].words), name))
        else:
            raise StageDirectionError(f"unknown stage direction [{m.group(1)}]; known: "
                                      + ", ".join(f"[{t}]" for t in list(DELIVERIES) + list(EVENTS)))
    return [s for s in segs if s.words or s.events]


def plain(text: str) -> str:
    """The words alone, as a recogniser should hear them (fillers and laughs included, pauses not)."""
    out = []
    for s in parse(text):
        ev = dict()
        for i, e in s.events:
            ev.setdefault(i, []).append(e)
        for i in range(len(s.words) + 1):
            out += [EVENTS[e] for e in ev.get(i, []) if EVENTS[e]]
            if i < len(s.words):
                out.append(s.words[i])
    return " ".join(out)


def _pct(v: float) -> str:
    return f"{v - 100:+.0f}%"


def to_ssml(segments: list[Segment], base: Style | None = None) -> tuple[str, list[str]]:
    """SSML for espeak-ng, and the espeak variant per segment (whisper is a voice variant there, not markup).
    ``base`` scales every segment (an utterance-level style drawn for the training data)."""
    from xml.sax.saxutils import escape
    parts, variants = ["<speak>"], []
    for s in segments:
        st = s.style if base is None else replace(
            s.style, rate=s.style.rate * base.rate / 100, pitch=s.style.pitch * base.pitch / 100,
            range=s.style.range * base.range / 100, volume=s.style.volume * base.volume / 100,
            whisper=s.style.whisper or base.whisper)
        variants.append("whisper" if st.whisper else "")
        words, ev = [], {}
        for i, e in s.events:
            ev.setdefault(i, []).append(e)
        for i in range(len(s.words) + 1):
            for e in ev.get(i, []):
                words.append(f'<break time="{PAUSE_MS[e]}ms"/>' if e in PAUSE_MS else escape(EVENTS[e]) + ",")
            if i < len(s.words):
                words.append(escape(s.words[i]))
        parts.append(f'<prosody rate="{st.rate:.0f}%" pitch="{_pct(st.pitch)}" range="{_pct(st.range)}" '
                     f'volume="{st.volume:.0f}%">' + " ".join(words) + "</prosody>")
    parts.append("</speak>")
    return " ".join(parts), variants
