"""Workshop exercises: a check per notebook that a student runs on their own answer, and the reference solutions
(``solutions.py``) that the notebooks' smoke runs pass through the same checks, so a broken exercise fails CI.

A check raises :class:`ExerciseError` (an ``AssertionError``) whose message says what was expected and where to
look; on success it returns what it measured, for the notebook to print. ``python -m workbench workshop OUT``
writes the student copy (solution cells replaced by stubs, checks kept) and the teacher copy (``workshop.py``).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


class ExerciseError(AssertionError):
    """A wrong (or not yet written) answer; the message says what the check expected."""


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise ExerciseError(message)


def _callable(x, what: str) -> None:
    _need(callable(x), f"{what} should be a function (or class) you wrote; got {type(x).__name__}. "
                       "Replace the `...` in the solution cell and run it again.")


def check_02_streaming_asr(finals: dict) -> dict:
    """Exercise 1: the final tokens do not depend on the frame size. ``finals``: {frame_ms: the last event of
    ``transcribe_streaming(rec, audio, frame_ms=...)``} for two frame sizes or more."""
    _need(isinstance(finals, dict) and len(finals) >= 2,
          "answer with a dict {frame_ms: final event} for two frame sizes at least, e.g. "
          "{10: transcribe_streaming(rec, audio, frame_ms=10)[-1], 500: ...}")
    for ms, f in finals.items():
        _need(getattr(f, "nbest", None), f"finals[{ms}] is not a Final with an n-best: take the *last* event that "
                                         "transcribe_streaming returns")
    (a_ms, a), *rest = finals.items()
    for b_ms, b in rest:
        _need(a.nbest[0].tokens == b.nbest[0].tokens,
              f"the final tokens at {a_ms} ms and {b_ms} ms frames differ ({a.text!r} / {b.text!r}). A step runs when "
              "its chunk is complete, whatever the frame size: stream the same audio through the same recogniser.")
    return {"frame_ms": sorted(finals), "text": a.text}


def check_07_rescoring(InVocabulary: Callable, base, vocab: set, nbests: list, n: int = 40) -> dict:
    """The vocabulary bonus: ``InVocabulary(base, vocab, gamma)`` reranks a ``Final``; gamma 0 must rank as
    ``base`` does, and a huge gamma must put a hypothesis with the most in-vocabulary words first."""
    from ..asr.scoring import normalize
    from ..events import Final
    _callable(InVocabulary, "InVocabulary")
    lists = [nb for nb in nbests if len(nb) >= 2][:n]
    _need(bool(lists), "no n-best list with two hypotheses or more to check on: decode more utterances")

    def count(text):
        return sum(w in vocab for w in normalize(text).split())

    def top(reranker, nb):
        out = reranker(Final("check", list(nb), 0.0))
        _need(getattr(out, "nbest", None), "InVocabulary(...)(final) should return a Final with its n-best reordered, "
                                          f"not {type(out).__name__}")
        _need(sorted(h.text for h in out.nbest) == sorted(h.text for h in nb),
              "the reranked n-best should hold the same hypotheses, only in another order")
        return out.nbest[0].text
    off, huge = InVocabulary(base, vocab, 0.0), InVocabulary(base, vocab, 1e6)
    for nb in lists:
        _need(top(off, nb) == top(base, nb), "with gamma = 0 the bonus is off, so InVocabulary must rank exactly as "
                                             f"the base reranker; it put {top(off, nb)!r} first, the base {top(base, nb)!r}")
        best = max(count(h.text) for h in nb)
        _need(count(top(huge, nb)) == best, "with a huge gamma the hypothesis with the most in-vocabulary words must "
                                            f"come first; {top(huge, nb)!r} has {count(top(huge, nb))}, the best {best}")
    return {"lists_checked": len(lists)}


def check_08_truncation_repair(my_defaults: dict, parser) -> dict:
    """A recovery rule: an alarm cut before its day is set for tomorrow, from a default, and nothing is asked."""
    from ..repair import DEFAULTS, recover
    _need(isinstance(my_defaults, dict), "my_defaults should be a dict like DEFAULTS: (frame, role) -> (concept, value)")
    _need(set(DEFAULTS) <= set(my_defaults), "keep every rule of DEFAULTS: start from dict(DEFAULTS) and add yours")
    alarm = parser.parse("set an alarm for seven thirty a m")
    fixed = recover(alarm.graph, alarm.text, defaults=my_defaults)
    _need(("set-alarm", ":date", "tomorrow", "default") in fixed.recovered,
          f"the day was not recovered from a default (recovered: {fixed.recovered}); the key is "
          "('set-alarm', ':date') and the value ('day', 'tomorrow')")
    _need(fixed.question is None and not fixed.still_missing, f"a question is still asked: {fixed.question!r}")
    return {"graph": str(alarm.graph), "recovered": fixed.recovered}


def check_09_look_to_talk(mean_rule: Callable, logits: np.ndarray, directed: np.ndarray) -> dict:
    """A fusion without training: ``mean_rule(logits, present)`` beats the best single cue (within sampling noise),
    and with one cue present ranks exactly as that cue."""
    from scipy.stats import spearmanr

    from ..looktotalk.models import eer
    _callable(mean_rule, "mean_rule")
    L, y = np.asarray(logits, float), np.asarray(directed, int)
    s = np.asarray(mean_rule(L), float)
    _need(s.shape == (len(L),) and np.isfinite(s).all(),
          f"mean_rule(logits) should give one finite score per utterance, shape ({len(L)},); got {s.shape}")
    for k in range(L.shape[1]):
        alone = [j == k for j in range(L.shape[1])]
        rho = spearmanr(np.asarray(mean_rule(L, alone), float), L[:, k])[0]
        _need(rho > 0.999, f"with only cue {k} present the rule should rank as that cue alone (Spearman {rho:.3f})")
    mine, best = eer(s, y), min(eer(L[:, k], y) for k in range(L.shape[1]))
    noise = 0.5 / np.sqrt(min(y.sum(), len(y) - y.sum()))
    _need(mine < best + noise, f"the mean rule's EER {100 * mine:.1f} % does not beat the best single cue's "
                               f"{100 * best:.1f} %: did you standardise each cue by its spread on dev?")
    return {"eer": float(mine), "best_single_eer": float(best)}


def check_10_ltts(pitch_shift: Callable, codec, codes, factor: float = 1.25) -> dict:
    """Pitch in code space: the median F0 of ``pitch_shift(codes, factor)`` is ``factor`` times the decoded
    speech's, within 5 %."""
    from ..codec import world
    _callable(pitch_shift, "pitch_shift")
    base, up = codec.decode(codes), np.asarray(pitch_shift(codes, factor), np.float32)
    _need(up.ndim == 1 and len(up) > 0, "pitch_shift should return a waveform (a 1-D array at 16 kHz)")
    f_base, f_up = world.f0_track(base), world.f0_track(up)
    _need((f_up > 0).any(), "no voiced frame in your output: was F0 set to zero or NaN? (column -2 holds log F0)")
    ratio = float(np.median(f_up[f_up > 0]) / np.median(f_base[f_base > 0]))
    _need(abs(ratio / factor - 1) < 0.05, f"median F0 rose x{ratio:.2f}, not x{factor}: the parameters hold *log* "
                                          "F0, so add log(factor) rather than multiply")
    return {"ratio": ratio, "audio": up}


def check_10_ltts_sleepy(style, sentence: str = "Okay, I will wake you at seven tomorrow") -> dict:
    """A new delivery ``[sleepy]`` (a ``Style``): at least 15 % slower and 3 dB quieter than neutral, as the bench
    measures it, through the target voice."""
    from ..tts.prosody import measure, realised
    from ..tts.render import render_espeak
    from ..tts.styles import DELIVERIES, Style
    _need(isinstance(style, Style), "answer with a Style(rate=..., pitch=..., range=..., volume=...) in percent of neutral")
    from dataclasses import asdict
    _need(all(isinstance(v, (int, float)) for v in asdict(style).values()),
          f"every field of the Style should be a number (percent of neutral): {style}")
    DELIVERIES["sleepy"] = style
    try:
        plain, sleepy = render_espeak(sentence), render_espeak(f"[sleepy] {sentence}")
    finally:
        del DELIVERIES["sleepy"]
    change = realised(measure(sleepy.audio), measure(plain.audio))
    _need(2 ** change["rate"] <= 0.85, f"only {100 * (1 - 2 ** change['rate']):.0f} % slower: lower the rate")
    _need(change["volume"] <= -3, f"only {-change['volume']:.1f} dB quieter: lower the volume")
    return {"change": change, "audio": sleepy.audio}


def check_11_speech_to_speech(against: dict, s2s, dev_rows: list[dict], n: int = 3) -> dict:
    """A preference rule for neutral users: with ``against`` as stage 5's table, neutral turns get a rejected
    answer more aroused than the chosen one, and a prosody pair each."""
    from ..s2s import data as D
    from ..s2s.bench import arousal
    _need(isinstance(against, dict) and "neutral" in against,
          "answer with stage 5's table (a dict like data.AGAINST) with a rule for 'neutral'")
    # turns whose own answer is not already excited ("Good news!" lines are): the rule must change something
    neutral = [x for x in dev_rows if x.get("task", "dialogue") == "dialogue" and x["arousal"] == "neutral"
               and "[excited]" not in x["response_tagged"]][:n]
    _need(bool(neutral), "no neutral dialogue turn among the dev rows given: pass more")
    saved = dict(D.AGAINST)
    D.AGAINST.clear()
    D.AGAINST.update(against)
    try:
        rejected = D.against_mood(neutral, workers=1)
        _need(set(rejected) == {x["id"] for x in neutral}, "against_mood made no rejected answer for the neutral turns")
        chosen = [s2s.codec.decode(np.asarray(x["response_codes"], np.int64)) for x in neutral]
        other = [s2s.codec.decode(np.asarray(rejected[x["id"]]["codes"], np.int64)) for x in neutral]
        idx, _ = arousal(chosen + other)
        k = len(neutral)
        _need(all(idx[k + i] > idx[i] for i in range(k)),
              f"a rejected answer is not more aroused than the chosen one (chosen {idx[:k].round(2)}, rejected "
              f"{idx[k:].round(2)}): which delivery is *against* a calm user's mood?")
        pairs = D.preference_pairs(s2s.model.layout, s2s.tok, neutral, rejected, np.random.default_rng(0))
        _need(sum(kind == "prosody" for *_, kind in pairs) == k, "preference_pairs made no prosody pair per neutral turn")
    finally:
        D.AGAINST.clear()
        D.AGAINST.update(saved)
    return {"chosen_arousal": idx[:k].tolist(), "rejected_arousal": idx[k:].tolist(), "pairs": len(pairs)}


CHECKS = {"02_streaming_asr": check_02_streaming_asr, "07_rescoring": check_07_rescoring,
          "08_truncation_repair": check_08_truncation_repair, "09_look_to_talk": check_09_look_to_talk,
          "10_ltts": check_10_ltts, "11_speech_to_speech": check_11_speech_to_speech}
