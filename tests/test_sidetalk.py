"""Side talk: the look-to-talk corpus's speech that is not meant for the device."""
import json

import pytest

from workbench.data import make_speakers, open_dataset, side_talk_corpus
from workbench.data.corpus import config_for, config_hash
from workbench.data.sidetalk import HELD_OUT_SIDE_TALK, KINDS, SIDE_TALK_TEMPLATES, TRAIN_SIDE_TALK, kind


@pytest.fixture(scope="module")
def side_talk(corpus_root):
    return side_talk_corpus("smoke", root=corpus_root, progress=False)


def test_templates_cover_every_kind_and_hold_some_out():
    assert {kind(t) for t in SIDE_TALK_TEMPLATES} == set(KINDS)
    assert set(HELD_OUT_SIDE_TALK).isdisjoint(TRAIN_SIDE_TALK)
    assert len(HELD_OUT_SIDE_TALK) + len(TRAIN_SIDE_TALK) == len(SIDE_TALK_TEMPLATES)
    assert {kind(t) for t in HELD_OUT_SIDE_TALK} == set(KINDS)      # every kind is measured on unseen phrasing


def test_side_talk_corpus_is_labelled_and_uses_the_splits_templates(side_talk, smoke_corpus):
    held = {t.text for t in HELD_OUT_SIDE_TALK}
    for split, n in (("train", 16), ("dev", 8), ("test", 8)):
        es = open_dataset(side_talk, split).entries
        assert len(es) == n
        assert all(e["directed"] is False and not e["truncated"] and e["domain"].startswith("side talk:") for e in es)
        assert all((e["template"] in held) == (split != "train") for e in es)
        # the split's own speakers (a conversational delivery changes only the rate)
        spk = {s.id.split("-r")[0] for s in make_speakers(config_for("smoke"))[split]}
        assert {e["speaker"].split("-r")[0] for e in es} <= spk
    es = [e for s in ("train", "dev", "test") for e in open_dataset(side_talk, s).entries]
    assert {e["delivery"] for e in es} == {"conversational", "request"}
    # requests carry no label and stay directed at the device
    assert all("directed" not in e for e in open_dataset(smoke_corpus, "test").entries)


def test_adding_the_side_talk_settings_kept_every_corpus_name(smoke_corpus):
    stored = json.loads((smoke_corpus / "corpus.json").read_text())["config"]
    assert config_hash(stored) == config_hash(config_for("smoke"))
    assert config_hash(config_for("smoke", side_talk=True)) != config_hash(config_for("smoke"))
