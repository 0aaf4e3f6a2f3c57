"""The truncation-repair room: frames from the templates, gold graphs (partial when cut), PENMAN and Smatch."""
import re

import numpy as np
import pytest

from workbench.data import templates as T
from workbench.repair.frames import ANNOTATION
from workbench.repair.graph import (GraphError, align, decode, encode, gold_graph, roles, smatch_counts,
                                    smatch_f1)
from workbench.repair.schema import SchemaError, frame_uses, frames, slots_of


def _fill(template: str, rng):
    """A filled template and the plain value of each slot occurrence, in order."""
    values = []

    def one(m):
        v = T.plain(T.SLOTS[m.group(1)](rng))
        values.append(v)
        return v
    return re.sub(r"\{(\w+)\}", one, template), values


def test_every_template_is_annotated_and_no_slot_is_taken_twice():
    assert set(ANNOTATION) == {t.text for t in T.TEMPLATES}
    for t in T.TEMPLATES:
        used = [r.slot_index for f in frame_uses(t) for r in f.roles if r.slot_index is not None]
        assert len(used) == len(set(used)) and all(0 <= i < len(slots_of(t.text)) for i in used)
    inv = frames()
    assert inv["set-timer"].required == (":quant", ":unit") and inv["turn-on"].required == (":device",)
    assert ":location" in inv["turn-on"].optional and inv["set-alarm"].types[":time"] == ("clock-time",)


def test_annotation_errors_are_typed(monkeypatch):
    from workbench.repair import schema
    with pytest.raises(SchemaError, match="no annotation"):
        frame_uses("open the pod bay doors")
    monkeypatch.setitem(schema.ANNOTATION, "call {name}", "call(name, name)")
    with pytest.raises(SchemaError, match="no free occurrence"):
        frame_uses("call {name}")
    monkeypatch.setitem(schema.ANNOTATION, "call {name}", "call(person)")
    with pytest.raises(SchemaError, match="not a known slot"):
        frame_uses("call {name}")


def test_alignment_recovers_every_slot_value_of_every_template():
    rng = np.random.default_rng(0)
    for t in T.TEMPLATES:
        for _ in range(15):
            text, values = _fill(t.text, rng)
            got = align(t.text, text)
            assert [v for v, _, _ in got] == values, (t.text, text)
            words = text.split()
            assert [" ".join(words[a:b]) for _, a, b in got] == values
    # a filler inside a value or between words is no part of any value
    assert align("remind me to {task} {day}", "remind me to email my er boss tonight")[0][0] == "email my boss"
    with pytest.raises(GraphError, match="not a filling"):
        align("call {name}", "call the moon")


def test_gold_graph_of_a_cut_request_marks_what_was_not_said():
    e = {"id": "x", "template": "set a timer for {n} {unit}", "text": "set a timer for ten", "truncated": True,
         "full_text": "set a timer for ten minutes"}
    g = gold_graph(e)
    assert roles(g) == {"set-timer": [":quant", ":unit?"]}
    assert '"ten"' in g and "unknown" in g
    full = gold_graph({**e, "text": e["full_text"], "truncated": False})
    assert roles(full) == {"set-timer": [":quant", ":unit"]} and "unknown" not in full
    # two frames: the second is dropped when none of its words were said, kept (its fillers unknown) when begun
    t = "okay so first turn off the {device} and then remind me to {task} {day}"
    full_text = "okay so first turn off the fan and then remind me to walk the dog tomorrow"
    cut_early = gold_graph({"template": t, "text": "okay so first turn off the", "truncated": True, "full_text": full_text})
    assert roles(cut_early) == {"turn-off": [":device?"]} and "multi-sentence" not in cut_early
    cut_late = gold_graph({"template": t, "text": "okay so first turn off the fan and then remind me to walk",
                           "truncated": True, "full_text": full_text})
    assert roles(cut_late) == {"turn-off": [":device"], "remind": [":task?", ":date?"]}
    assert decode(cut_late).top == "m0"
    with pytest.raises(GraphError, match="no template"):
        gold_graph({"id": "y", "text": "hello"})


def test_every_corpus_utterance_has_a_gold_graph(smoke_corpus):
    from workbench.data import open_dataset
    for split in ("train", "dev", "test", "test_unseen_text"):
        for e in open_dataset(smoke_corpus, split).entries:
            g = gold_graph(e)
            assert encode(decode(g)) == g                    # PENMAN round trip
            assert ("unknown" in g) <= bool(e.get("truncated"))


def test_smatch_scores_graphs_like_the_field():
    gold = "(f1 / set-timer :quant (x2 / number :value \"ten\") :unit (x3 / time-unit :value \"minutes\"))"
    same_other_names = "(a / set-timer :quant (b / number :value \"ten\") :unit (c / time-unit :value \"minutes\"))"
    partial = "(f1 / set-timer :quant (x2 / number :value \"ten\") :unit (x3 / unknown))"
    wrong_intent = "(f1 / set-alarm :quant (x2 / number :value \"ten\") :unit (x3 / time-unit :value \"minutes\"))"
    assert smatch_f1([(same_other_names, gold)]) == 1.0      # variable names do not matter
    m, t, g = smatch_counts(partial, gold)
    assert t == g - 1 and m == t - 1                          # the unknown node matches nothing, its edge does
    assert smatch_f1([(partial, gold)]) == pytest.approx(2 * m / (t + g))
    assert smatch_counts(wrong_intent, gold) == (g - 1, g, g)          # one instance triple wrong
    assert smatch_f1([(partial, gold)]) < smatch_f1([(wrong_intent, gold)]) < 1.0
    # corpus level: triples summed over the pairs, not F1 averaged
    assert smatch_f1([(gold, gold), (partial, gold)]) == pytest.approx(2 * (g + m) / (g + g + t + g))
    with pytest.raises(GraphError, match="malformed PENMAN"):
        smatch_counts("(f1 / set-timer :quant (x2", gold)


def test_a_cut_request_is_detected_and_the_question_names_the_missing_role():
    from workbench.repair.repair import ask, clarifying_question, diagnose
    cut = gold_graph({"template": "set a timer for {n} {unit}", "text": "set a timer for", "truncated": True,
                      "full_text": "set a timer for ten minutes"})
    d = diagnose(cut, "set a timer for")
    assert d.truncated and d.missing == (("set-timer", ":quant"), ("set-timer", ":unit"))
    assert ask(cut, "set a timer for") == "For how long should I set a timer?"
    whole = gold_graph({"template": "set a timer for {n} {unit}", "text": "set a timer for ten minutes"})
    assert diagnose(whole, "set a timer for ten minutes") == diagnose(whole)
    assert not diagnose(whole).truncated and ask(whole) is None
    # a required role the graph simply lacks (a parser that dropped it) counts like an unknown one
    assert diagnose("(f / add-to-list)").missing == (("add-to-list", ":item"),)
    assert ask("(f / add-to-list)") == "Add what to your list?"
    assert ask("(f / turn-off)") == "Which device should I turn off?"
    # the question follows the role and its filler type, not the sentence
    assert clarifying_question("query-weather", [":location"], "city") == "For which city should I get the weather?"
    assert clarifying_question("turn-on", [":location"], "room") == "In which room should I turn on?"
    assert clarifying_question("remind", [":task"]) == "What should I remind you to do?"
    # words alone: a dangling last word with every role said, and a multi-sentence graph's second frame
    assert diagnose("(f / tell-joke)", "tell me a").truncated and ask("(f / tell-joke)", "tell me a") == \
        "Sorry, could you finish that?"
    two = gold_graph({"template": "okay so first turn off the {device} and then remind me to {task} {day}",
                      "text": "okay so first turn off the fan and then remind me to", "truncated": True,
                      "full_text": "okay so first turn off the fan and then remind me to walk the dog tomorrow"})
    assert diagnose(two).missing == (("remind", ":task"), ("remind", ":date"))
    assert ask(two) == "What should I remind you to do?"
    with pytest.raises(GraphError):
        diagnose("(f / set-timer :quant")


def test_recovery_says_where_each_filler_came_from():
    from workbench.repair.repair import diagnose, recover
    timer = {"template": "set a timer for {n} {unit}", "text": "set a timer for", "truncated": True,
             "full_text": "set a timer for five minutes"}
    earlier = gold_graph({"template": "set a timer for {n} {unit}", "text": "set a timer for ten minutes"})
    r = recover(gold_graph(timer), timer["text"], history=[earlier])          # "... and another one for"
    assert r.recovered == (("set-timer", ":quant", "ten", "dialogue context"),
                           ("set-timer", ":unit", "minutes", "dialogue context"))
    assert r.still_missing == () and r.question is None and not diagnose(r.graph).truncated
    alone = recover(gold_graph(timer), timer["text"])                         # only the unit has a default
    assert alone.recovered == (("set-timer", ":unit", "minutes", "default"),)
    assert alone.still_missing == (("set-timer", ":quant"),) and alone.question == "For how long should I set a timer?"
    off = {"template": "turn off the {device} in the {room}", "text": "turn off the", "truncated": True,
           "full_text": "turn off the fan in the kitchen"}
    one_on = recover(gold_graph(off), off["text"], devices={"kitchen lights": "off", "hallway fan": "on"})
    assert one_on.recovered == (("turn-off", ":device", "fan", "device state"),
                                ("turn-off", ":location", "hallway", "device state"))
    two_on = recover(gold_graph(off), off["text"], devices={"hallway fan": "on", "tv": "on"})   # ambiguous: ask
    assert two_on.recovered == () and two_on.question == "Which device should I turn off?"
    assert recover(gold_graph(off), off["text"], devices={}).recovered == ()     # nothing known: nothing made up
    complete = gold_graph({"template": "turn off the {device} in the {room}", "text": "turn off the tv in the kitchen"})
    assert recover(complete) == recover(complete, devices={"hallway fan": "on"})
    assert recover(complete).graph == complete and recover(complete).recovered == ()
    assert not diagnose(one_on.graph).truncated


def test_no_complete_request_ends_on_a_dangling_word():
    from workbench.repair.repair import DANGLING, diagnose
    rng = np.random.default_rng(1)
    for t in T.TEMPLATES:
        for _ in range(15):
            text, _ = _fill(t.text, rng)
            assert text.split()[-1] not in DANGLING, text
            g = gold_graph({"template": t.text, "text": text})
            assert not diagnose(g, text).truncated, (text, diagnose(g, text).reasons)
