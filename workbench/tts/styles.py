"""Stage directions: the tags that say how a response should be delivered, and what each one asks of the voice.

A tagged text is plain words with bracketed directions, as the tagger writes them and the large TTS reads them:
``[excited] Your package arrived early! [pause] Want me to read the note?``. Two kinds:
- **delivery** tags (``DELIVERIES``) hold from where they stand to the next delivery tag; each is a ``Style``:
  speaking rate, pitch level, pitch range and volume in percent of the voice's neutral, and whisper;
- **event** tags (``EVENTS``) happen where they stand: a pause, a filler ("um", "uh"), a laugh-like interjection.
Requested values are explicit numbers so that a bench can correlate what was asked with what was measured.
``parse`` turns a tagged text into ``Segment``s with typed errors for what cannot be spoken; ``pieces`` cuts them at
their pauses, and ``piece_ssml`` writes a piece as the SSML espeak-ng obeys (the training data's ground truth).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

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
    foreign = sorted({c for c in TAG.sub("", text) if c.isalpha() and "LATIN" not in unicodedata.name(c, "")})
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


@dataclass
class Piece:
    """A stretch spoken in one go: one style, its words (fillers and laughs included), the silence after it."""
    delivery: str
    style: Style
    words: list[str]
    pause_ms: int = 0


def pieces(segments: list[Segment]) -> list[Piece]:
    """Segments cut at their pauses: a synthesiser speaks each piece whole, and the silences are placed exactly
    (an SSML ``<break>`` at a piece's edge would be trimmed away with the edge's silence)."""
    out: list[Piece] = []
    for s in segments:
        ev: dict[int, list[str]] = {}
        for i, e in s.events:
            ev.setdefault(i, []).append(e)
        cur = Piece(s.delivery, s.style, [])
        for i in range(len(s.words) + 1):
            for e in ev.get(i, []):
                if e in PAUSE_MS:
                    if cur.words:
                        out.append(cur)
                        cur = Piece(s.delivery, s.style, [])
                    if out:                  # a pause before the first word says nothing: dropped
                        out[-1].pause_ms += PAUSE_MS[e]
                else:                        # the comma gives the filler its own little phrase
                    cur.words += (EVENTS[e] + ",").split()
            if i < len(s.words):
                cur.words.append(s.words[i])
        if cur.words:
            out.append(cur)
    return out


def _pct(v: float) -> str:
    return f"{v - 100:+.0f}%"


def piece_ssml(piece: Piece) -> str:
    """One piece as the SSML espeak-ng obeys: its words inside one ``<prosody>`` (whisper is a voice variant
    there, not markup; the renderer picks it)."""
    from xml.sax.saxutils import escape
    st = piece.style
    return (f'<speak><prosody rate="{st.rate:.0f}%" pitch="{_pct(st.pitch)}" range="{_pct(st.range)}" '
            f'volume="{st.volume:.0f}%">' + escape(" ".join(piece.words)) + "</prosody></speak>")
