"""The task-success judge: the right answer passes however Whisper spells it, a missing value or another intent's
answer fails."""
import numpy as np

from workbench.data import templates as T
from workbench.s2s import dialogues as D
from workbench.s2s.judge import task_success


def _row(template, text, mood="neutral"):
    frames = D.meaning(template, text)
    d = D.Dialogue("x", template, text, frames, mood, "s", D.respond(frames, mood))
    return {"text": text, "response_text": d.response_plain, "said_back": d.said_back(), "task": "dialogue",
            "frames": [{"intent": f.intent, **f.values} for f in frames]}


def test_the_right_answer_passes_however_it_is_spelt():
    row = _row("set a timer for {n} {unit}", "set a timer for ten minutes")
    assert row["response_text"] == "Okay, ten minutes, starting now."
    for heard in ("Okay, ten minutes, starting now.", "OK, 10 minutes starting now", "okay 10 minutes, starting now!"):
        assert task_success(heard, row)["success"], heard


def test_a_missing_value_or_another_intents_answer_fails():
    row = _row("set a timer for {n} {unit}", "set a timer for ten minutes")
    missing = task_success("Okay, starting now.", row)
    assert not missing["values"] and not missing["success"]
    other = task_success("Adding ten minutes to your timer.", row)           # extend-timer's answer
    assert other["values"] and not other["intent"] and not other["success"]
    assert not task_success("", row)["success"]
    assert not task_success("the weather in paris is sunny", row)["success"]


def test_every_gold_answer_passes_and_a_shuffled_one_mostly_fails():
    rng = np.random.default_rng(0)
    rows = []
    for t in T.TEMPLATES:
        for _ in range(4):
            text = T.plain(t.fill(rng))
            rows.append(_row(t.text, text, str(rng.choice(list(D.FOLLOW)))))
    assert all(task_success(r["response_text"], r)["success"] for r in rows)
    wrong = [task_success(rows[(i + 7) % len(rows)]["response_text"], r)["success"] for i, r in enumerate(rows)]
    assert np.mean(wrong) < 0.1


def test_a_translation_must_be_nearer_its_reference_than_the_request():
    row = {"text": "call anna", "response_text": "llama a anna", "said_back": {"contact": "anna"},
           "task": "translate-es", "frames": [{"intent": "call", "contact": "anna"}]}
    assert task_success("llama a anna", row)["success"]
    assert not task_success("call anna", row)["success"]
