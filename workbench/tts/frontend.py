"""The synthesisers' front end: a tagged text as the symbols a synthesiser reads, espeak-ng phonemes and tags.

Why phonemes: both synthesisers are trained on 65 response templates and tested on held-out ones, so most test words
were never heard in training. A model reading the LM's sub-word tokens has to learn English spelling from two
hours of speech and fails on new words (stop 29: Whisper WER 97 %); one reading phonemes only has to learn how
each phoneme sounds. The phonemes are espeak-ng's own (its PHONEME events, the G2P that piper also uses), so the
training targets come with their durations from the same events and need no aligner, and synthesis reads the
same symbols for a text it has never seen.

A tagged text's symbols, in order, per element (corpus.ELEMENT: every tag and every word):
- a word: the phonemes espeak-ng spoke for it (a run of pause phonemes ``_``/``_:`` collapsed to one);
- a tag: one symbol ``[name]``, starting where the speech before it ended, so a pause tag spans its silence and a
  delivery tag the short gap where the voice changes (none where a tag before it already owns the gap); an event that is spoken (``[um]``, ``[laugh]``) starts with
  its words and is followed by their phonemes.
Each symbol keeps the index of its element, which is how the LTTS hands the LLM's hidden state of a word (or tag)
to that word's phonemes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .styles import DELIVERIES, EVENTS, PAUSE_MS

ELEMENT = re.compile(r"\[[^\[\]]*\]|[^\s\[\]]+")
PAUSES = ("_", "_:")
TAGS = tuple(f"[{n}]" for n in list(DELIVERIES) + [e for e in EVENTS if e not in DELIVERIES])


@dataclass
class Symbols:
    names: list[str]            # phoneme mnemonics and [tag]s
    owner: list[int]            # element index of each symbol
    starts: list[float]         # seconds (from a rendering; synthesis ignores them)
    elements: list[str]


def align(tagged: str, rendering) -> Symbols:
    """The symbols of a tagged text spoken as ``rendering`` (render.render_espeak of the same text)."""
    els = ELEMENT.findall(tagged)
    words, phones = rendering.words, rendering.phonemes
    # each phoneme to the last rendered word that starts at or before it (pause runs at a piece's end go with its
    # last word; espeak-ng's onset phoneme, a little after the word's start, with the first)
    by_word: list[list[tuple[str, float]]] = [[] for _ in words]
    k = 0
    for name, t in phones:
        while k + 1 < len(words) and words[k + 1][1] <= t + 1e-3:
            k += 1
        if words:
            by_word[k].append((name, t))
    names, owner, starts = [], [], []

    def put(sym: str, i: int, t: float):
        if sym in PAUSES and names and names[-1] in PAUSES:      # a run of pauses is one (the first word owns it)
            names[-1] = "_:" if "_:" in (sym, names[-1]) else "_"
            return
        names.append(sym)
        owner.append(i)
        starts.append(t)

    k = 0
    for i, e in enumerate(els):
        tag = e[1:-1].strip().lower() if e.startswith("[") else None
        if tag is None:
            n_words = 1
        else:
            n_words = len(EVENTS[tag].split()) if tag in EVENTS and tag not in PAUSE_MS else 0
            after_tag = i > 0 and els[i - 1].startswith("[") and k < len(words)
            put(f"[{tag}]", i, words[k][1] if n_words or (after_tag and tag not in PAUSE_MS)
                else words[k - 1][2] if k else 0.0)
        for w in range(k, k + n_words):
            for name, t in by_word[w]:
                put(name, i, t)
        k += n_words
    if k != len(words):
        raise RuntimeError(f"{tagged!r}: {k} of {len(words)} rendered words matched")
    for j in range(1, len(starts)):                 # monotone (a tag may start a hair after its first phoneme)
        starts[j] = max(starts[j], starts[j - 1])
    return Symbols(names, owner, starts, els)


def phonemise(tagged: str) -> Symbols:
    """The symbols of a tagged text for synthesis: espeak-ng's phonemes in the target voice (typed errors from
    ``styles.parse`` for empty, over-long, unknown-tag or other-script input)."""
    from .render import render_espeak
    return align(tagged, render_espeak(tagged))
