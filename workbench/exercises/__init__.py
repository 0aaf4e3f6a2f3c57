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


def check_00_corpus_tour(answer: dict, ds) -> dict:
    """Exercise 1: the utterance of ``ds`` with the longest mid-sentence pause: ``{"index": i, "pause_s": x}``."""
    _need(isinstance(answer, dict) and {"index", "pause_s"} <= set(answer)
          and all(isinstance(answer[k], (int, float, np.integer, np.floating)) for k in ("index", "pause_s")),
          'answer with {"index": position of the utterance in ds, "pause_s": its longest pause in seconds}')
    longest = [max((p["end"] - p["start"] for p in e["pauses"]), default=0.0) for e in ds.entries]
    _need(max(longest) > 0, "this split has no mid-sentence pause at all: choose another split or a larger corpus")
    i = int(answer["index"])
    _need(0 <= i < len(ds), f"index {i} is outside the split (0..{len(ds) - 1})")
    _need(abs(float(answer["pause_s"]) - longest[i]) < 1e-3,
          f"utterance {i}'s longest pause is {longest[i]:.3f} s, not {float(answer['pause_s']):.3f} s: a pause lasts "
          "from its 'start' to its 'end' (e['pauses'])")
    _need(longest[i] >= max(longest) - 1e-9, f"utterance {int(np.argmax(longest))} has a longer pause "
                                             f"({max(longest):.3f} s): look through every entry of the split")
    return {"index": i, "pause_s": longest[i], "text": ds.entries[i]["text"]}


def check_01_frame_batching(engine_cls, rec, utts: list, policy, streams: int = 4, duration_s: float = 2.0) -> dict:
    """A dispatch policy of your own: a ``FrameBatcher`` subclass that never holds back a full batch and, run
    through ``simulate``, serves every stream (no chunk waits for ever)."""
    from ..batching import BatchPolicy, FrameBatcher
    from ..batching.simulation import simulate
    _need(isinstance(engine_cls, type) and issubclass(engine_cls, FrameBatcher),
          "answer with a class that subclasses FrameBatcher and overrides next_due()")
    full = max(2, policy.target_batch)

    def due(cls, n):
        eng = cls(rec, BatchPolicy(full, policy.max_wait_ms, None), pause_factory=lambda s: None)
        for k in range(n):
            eng.submit(f"s{k}", utts[k % len(utts)]["audio"][:8000], now=0.0)     # 0.5 s: a complete chunk each
        return eng.next_due()
    _need(due(engine_cls, full) == due(FrameBatcher, full),
          "with a full batch ready your engine should be due at once, as FrameBatcher is: holding back a full batch "
          "only adds latency")
    run = simulate(rec, utts, streams, BatchPolicy(policy.target_batch, policy.max_wait_ms, None),
                   duration_s=duration_s, engine_cls=engine_cls)
    lat = run["added_latency_ms"]
    _need(lat and np.isfinite(lat["p95"]), "no chunk got a result in the simulation: does next_due() ever say work "
                                          "is due?")
    return {"p95_added_ms": lat["p95"], "mean_batch": run["mean_batch"],
            "due_with_one_chunk_s": due(engine_cls, 1), "plain_due_with_one_chunk_s": due(FrameBatcher, 1)}


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


def check_03_dynamic_lookahead(policy, model, audio) -> dict:
    """A policy of your own: a ``CascadePolicy`` whose ``commit`` returns (commit now?, score), commits a confident
    chunk of blanks, and decodes an utterance through ``DynamicLookaheadRecognizer``."""
    import torch

    from ..asr.lookahead import CascadePolicy, DynamicLookaheadRecognizer
    _need(isinstance(policy, CascadePolicy), "answer with an instance of your CascadePolicy subclass, e.g. "
                                             "MyPolicy(ladder, threshold=0.3)")
    ctx, vocab = policy.ladder[0], 17
    blanks = torch.full((4, vocab), -20.0)
    blanks[:, -1] = 0.0                                   # CTC's blank is the last class: certain, nothing said
    out = policy.commit(ctx, blanks)
    _need(isinstance(out, tuple) and len(out) == 2, "commit(context, logp) should return (commit_now, score)")
    _need(bool(out[0]), "a chunk the probe is sure holds nothing (all blank) should be committed at once")
    flat = torch.full((4, vocab), -float(np.log(vocab)))  # every class equally likely: as unsure as it gets
    _need(not bool(policy.commit(ctx, flat)[0]) or policy.threshold >= 1,
          "a chunk whose every frame is a coin toss over the vocabulary should wait for more lookahead")
    rec = DynamicLookaheadRecognizer(model, policy)
    st = rec.new_stream("check")
    for a in range(0, len(audio), 480):
        rec.accept_audio(st, audio[a:a + 480])
    final = rec.finalize(st)[-1]
    _need(st.decisions and all(d.context in policy.ladder for d in st.decisions),
          "the recogniser made no decision with your policy, or one outside its ladder")
    return {"text": final.text, "chunks": len(st.decisions),
            "contexts": {str(c): sum(d.context == c for d in st.decisions) for c in policy.ladder}}


def check_04_endpointing(first_pass, signals: list, pause_ms: float, theta: float) -> dict:
    """A first pass of your own: pause *or* EOU. It fires no later than either alone (EOU to within the VAD's
    next window), and never before either does."""
    from ..endpoint import EouEndpointer, PauseEndpointer
    from ..endpoint.endpointers import Endpointer
    _need(isinstance(first_pass, Endpointer), "answer with an instance of your Endpointer subclass, e.g. "
                                              "PauseOrEou(first_pass_ms, theta)")
    pause, eou = PauseEndpointer(pause_ms), EouEndpointer(theta)
    for k, s in enumerate(signals):
        out = first_pass.proposals(s)
        _need(isinstance(out, tuple) and len(out) == 2 and len(out[0]) == len(out[1]),
              "proposals(s) should return (times, holds): two arrays of equal length")
        mine, p, e = first_pass.endpoint(s), pause.endpoint(s), eou.endpoint(s)
        last = pause.proposals(s)[0]
        if e is not None and len(last) and e > last[-1] + 1e-9 and mine is None:
            e = None                                      # EOU only after the VAD's last window: nothing to fire on
        if p is None and e is None:
            _need(mine is None, f"utterance {k}: neither the pause nor EOU fires, yet yours does at {mine}")
            continue
        _need(mine is not None, f"utterance {k}: {'the pause' if p is not None else 'EOU'} fires, yours never does")
        first = min(v for v in (p, e) if v is not None)
        _need(mine >= first - 1e-9, f"utterance {k}: yours fires at {mine:.2f} s, before either does ({first:.2f} s)")
        if p is not None:
            _need(mine <= p + 1e-9, f"utterance {k}: the pause alone fires at {p:.2f} s, yours later ({mine:.2f} s)")
        if e is not None:
            _need(mine <= e + s.vad_hop + 1e-9, f"utterance {k}: EOU fires at {e:.2f} s, yours only at {mine:.2f} s")
    return {"utterances": len(signals)}


def check_05_endpoint_tuning(pause_ms: float, tuner, target_ep90_ms: float) -> dict:
    """Tuning on dev: the pause setting with the fewest cut-offs whose EP90 stays within the budget, or None
    when no setting keeps EP90 within it on these utterances (an answer that does not exist is said so)."""
    curve = tuner.curves.get("pause")
    _need(bool(curve), "the tuner has no pause curve: run tuner.rescore(...) first")
    ok = [r for r in curve if np.isfinite(r["EP90_ms"]) and r["EP90_ms"] <= target_ep90_ms]
    if not ok:
        low = min((r for r in curve if np.isfinite(r["EP90_ms"])), key=lambda r: r["EP90_ms"], default=None)
        where = f"; the lowest EP90 is {low['EP90_ms']:.0f} ms, at {low['setting']} ms" if low else ""
        _need(pause_ms is None, f"no pause setting keeps EP90 within {target_ep90_ms} ms on these utterances{where}: "
                                "the answer is None (or raise the budget)")
        return {"pause_ms": None, "EP90_ms": low["EP90_ms"] if low else None, "cutoff_rate": None,
                "why": f"no pause setting keeps EP90 within {target_ep90_ms} ms here{where}"}
    _need(isinstance(pause_ms, (int, float, np.integer, np.floating)),
          "my_pause_ms should be a number: one of the settings of tuner.curves['pause'] (a setting meets the budget)")
    row = next((r for r in curve if abs(float(r["setting"]) - float(pause_ms)) < 1e-6), None)
    _need(row is not None, f"{pause_ms} ms is not a setting of the tuner's pause curve: "
                           f"{[r['setting'] for r in curve]}")
    _need(row["EP90_ms"] <= target_ep90_ms, f"at {pause_ms} ms EP90 is {row['EP90_ms']:.0f} ms, over the budget")
    best = min(r["cutoff_rate"] for r in ok)
    _need(row["cutoff_rate"] <= best + 1e-12, f"{pause_ms} ms cuts off {100 * row['cutoff_rate']:.1f} %, but a setting "
                                              f"within the budget cuts off only {100 * best:.1f} %")
    return {"pause_ms": pause_ms, "EP90_ms": row["EP90_ms"], "cutoff_rate": row["cutoff_rate"]}


def check_06_live_demo(block_sizes: list, audio, block_ms: int = 100) -> dict:
    """A second consumer: the block sizes it saw while ``audio`` was replayed through a ``MicCapture``."""
    n = int(16000 * block_ms / 1000)
    _need(isinstance(block_sizes, (list, tuple)) and len(block_sizes) > 0,
          "answer with the list of len(samples) your on_chunk consumer received")
    _need(sum(block_sizes) == len(audio), f"the blocks hold {sum(block_sizes)} samples, the audio {len(audio)}: "
                                          "was every block seen once, and only once?")
    _need(all(b == n for b in block_sizes[:-1]) and 0 < block_sizes[-1] <= n,
          f"every block but the last should hold {n} samples ({block_ms} ms at 16 kHz)")
    return {"blocks": len(block_sizes), "samples_per_block": n}


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
    from ..s2s.evaluation import arousal
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

