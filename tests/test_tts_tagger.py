"""The stage-direction tagger: its output keeps the input's words whatever the LM writes, tag F1 counts what it
should, the rule floor, and a tiny fine-tune that saves, reloads and tags with typed errors for bad input."""
import pytest

from workbench.asr.streaming import ModelNotAvailableError
from workbench.tts import StageDirectionError
from workbench.tts.tagger import TaggerConfig, load_tagger, pairs, project, rule_tagger, tag_f1, tag_positions


def test_projection_keeps_the_words_and_only_known_tags():
    plain = "Sorry, I didn't catch that. Could you say it again?"
    gen = "[apologetic] Sorry, I did not catch that. [shouting] [um] Could you say it again? [curious"
    out = project(plain, gen)
    # the LM wrote "did not" for "didn't": aligned word by word, "[um]" still lands before "Could"
    assert out == "[apologetic] Sorry, I didn't catch that. [um] Could you say it again?"
    assert " ".join(w for w in out.split() if not w.startswith("[")) == plain     # never changes what is said
    assert [n for n, _ in tag_positions(out)] == ["apologetic", "um"]
    assert project("a b", "[excited] a b c d [laugh]") == "[excited] a b [laugh]"   # positions clipped to the end


def test_tag_f1_scores_position_and_name():
    gold = ["[excited] Done! [pause] Anything else?", "Okay."]
    assert tag_f1(gold, gold)["f1"]["value"] == 1.0
    moved = ["[excited] Done! Anything [pause] else?", "Okay."]
    r = tag_f1(gold, moved)
    assert r["f1"]["value"] == pytest.approx(0.5) and r["f1_names"]["value"] == 1.0
    assert tag_f1(gold, ["Done! Anything else?", "[calm] Okay."])["f1"]["value"] == 0.0


def test_rule_floor_and_training_pairs():
    assert rule_tagger("Sorry, no. Which room? Great!") == "[apologetic] Sorry, no. [curious] Which room? [excited] Great!"
    train, test = pairs(50, False, 0), pairs(50, True, 0)
    assert all("[" not in p for p, _ in train) and {t for _, t in train} != {t for _, t in test}


def test_tiny_tagger_trains_saves_and_rejects_bad_input(tmp_path):
    from workbench.tts.tagger import train_tagger
    meta = train_tagger(tmp_path / "t", TaggerConfig(n_train=64, n_dev=16, max_steps=3, threads=1), n_test=6,
                        log=lambda *a: None)
    assert meta["steps"] == 3 and 0.0 <= meta["test"]["tagger"]["f1"]["value"] <= 1.0
    tg = load_tagger(tmp_path / "t")
    plain = "Sorry, I couldn't find that."
    assert " ".join(w for w in tg.tag(plain).split() if not w.startswith("[")) == plain
    for bad, what in (("", "empty"), ("x " * 400, "at most"), ("привет", "another script")):
        with pytest.raises(StageDirectionError, match=what):
            tg.tag(bad)
    with pytest.raises(ModelNotAvailableError, match="train-tagger"):
        load_tagger(tmp_path)
