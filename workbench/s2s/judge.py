"""Was the answer right? Task success of a spoken answer from what a judge heard (Whisper's transcript).

Why this rule: an answer is right when it does what was asked with the request's values. The dialogue grammar
(dialogues.RESPONSES) says every value back, so what was heard must contain each of them, and it must sound like
the right intent's answer more than any other intent's. Concretely, the gold answer must be nearer (word edit
distance) to what was heard than every other intent's lines, filled with the same values. Both sides go through the
WER normaliser (Whisper's English normaliser: "ten" and "10" are the same word).

The repair room's parser reads requests, not answers. In the cascade it is the understanding step (request
transcript → frames → answer). Here it would be judging text of a kind it never learnt.
"""
from __future__ import annotations

import re

from ..asr.scoring import normalize
from .dialogues import _ROLE, RESPONSES


def _words(text: str) -> list[str]:
    """Normalised words, the normaliser's currency and percent signs spelt out again, so that a value ("eighty
    two", "dollars") matches inside its sentence ("eighty two dollars" -> "$82" -> "82 dollars")."""
    from ..tts.styles import TAG
    text = normalize(TAG.sub(" ", text))
    return re.sub(r"\$(\S+)", r"\1 dollars", text).replace("%", " percent").split()


def _contains(hay: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return n == 0 or any(hay[i:i + n] == needle for i in range(len(hay) - n + 1))


def _distance(a: list[str], b: list[str]) -> int:
    import jiwer
    if not a:
        return len(b)
    if not b:
        return len(a)
    out = jiwer.process_words(" ".join(a), " ".join(b))
    return out.substitutions + out.deletions + out.insertions


def _filled(line: str, values: dict) -> str:
    """A grammar line with the roles it names filled from ``values``; a role the request has no value for is left
    out."""
    return _ROLE.sub(lambda m: values.get(m.group(1), ""), line)


def task_success(heard: str, row: dict) -> dict:
    """``row``: a dialogue turn (``response_text``, ``said_back``, ``frames``). Returns whether every value was
    said back (``values``), whether the right intent's answer is the nearest (``intent``), and ``success`` (both).
    A translation turn succeeds when the heard words are nearer its reference than the untranslated request."""
    h = _words(heard)
    gold = _words(row["response_text"])
    values = all(_contains(h, _words(v)) for v in row.get("said_back", {}).values())
    if row.get("task", "dialogue") != "dialogue":
        intent = _distance(gold, h) < _distance(_words(row["text"]), h)
        return {"values": values, "intent": intent, "success": values and intent}
    own = {f["intent"] for f in row["frames"]}
    vals = {k: v for f in row["frames"] for k, v in f.items() if k != "intent"}
    d_gold = _distance(gold, h)
    rivals = [_words(_filled(line, vals)) for it, lines in RESPONSES.items() if it not in own for line in lines]
    intent = all(d_gold < _distance(r, h) for r in rivals if r != gold)
    return {"values": values, "intent": intent, "success": values and intent}

