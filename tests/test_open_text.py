"""Open-vocabulary text for the recogniser's training speech: SmolLM2's sentences, normalised as the corpus speaks,
kept away from every real recording's prompt, and each sentence in one corpus split only."""
import re

import numpy as np
import pytest

from workbench.data.corpus import CorpusError, _plan_job, config_for, make_speakers, open_templates
from workbench.lm.open_text import OpenTextError, generate, held_out_prompts, normalise, read


def test_sentences_are_normalised_as_the_corpus_speaks_or_refused():
    assert normalise("Please call me at 5 pm, OK?") == "please call me at five pm ok"
    assert normalise("It's the 3rd time this week!") == "it's the third time this week"
    assert normalise("Hi!") is None                                     # too short to be a sentence
    assert normalise("Café au lait is great today") is None             # not English letters
    assert normalise(" ".join(["word"] * 30)) is None                   # too long for one utterance


def test_held_out_prompts_are_the_real_recordings_transcripts():
    prompts = held_out_prompts()
    assert len(prompts) > 400                       # Asterisk's 563 prompts (distinct), LibriVox, cards
    assert "your temporary greeting has been removed" in prompts


def _sentences(tmp_path, n=400):
    words = "the a cat dog sings walks quickly slowly under over bridge river garden window".split()
    rng = np.random.default_rng(0)
    lines = sorted({" ".join(rng.choice(words, int(rng.integers(4, 9)))) for _ in range(n)})
    p = tmp_path / "open.txt"
    p.write_text("\n".join(lines) + "\n")
    return p, lines


def test_each_sentence_belongs_to_one_split_and_the_corpus_plans_from_its_split(tmp_path):
    p, lines = _sentences(tmp_path)
    parts = {s: {t.text for t in open_templates(str(p), s)} for s in ("train", "dev", "test")}
    assert not (parts["train"] & parts["dev"]) and not (parts["train"] & parts["test"]) and not (parts["dev"] & parts["test"])
    assert set().union(*parts.values()) == set(lines)
    assert 0.02 < len(parts["dev"]) / len(lines) < 0.10                # a twentieth each to dev and test
    cfg = config_for("open", open_text=str(p))
    assert cfg.open_text_sha1 and len(cfg.open_text_sha1) == 12
    speakers = make_speakers(cfg)
    for split in ("train", "dev"):
        for i in range(5):
            plan, _ = _plan_job((None, split, i, cfg, speakers[split]))
            assert " ".join(plan["words"]) in parts[split]


def test_a_missing_open_text_is_refused_by_name(tmp_path):
    with pytest.raises(CorpusError, match="open-text"):
        config_for("open", open_text=str(tmp_path / "missing.txt"))
    with pytest.raises(OpenTextError, match="open-text"):
        read(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(OpenTextError, match="no sentences"):
        read(tmp_path / "empty.txt")
    with pytest.raises(OpenTextError, match="positive"):
        generate(0)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["ctranslate2", "transformers"])
def test_smollm2_writes_distinct_normalised_sentences_deterministically(backend):
    a = generate(4, seed=3, batch=4, max_new_tokens=20, backend=backend, log=lambda *_: None)
    b = generate(4, seed=3, batch=4, max_new_tokens=20, backend=backend, log=lambda *_: None)
    assert a == b and len(set(a)) == 4
    assert all(re.fullmatch(r"[a-z' ]+", s) and 4 <= len(s.split()) <= 24 for s in a)
    assert not set(a) & held_out_prompts()
    with pytest.raises(OpenTextError, match="backend"):
        generate(4, backend="llama.cpp")
