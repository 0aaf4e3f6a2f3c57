"""Log-linear n-best rescoring: oracle, tuning on dev, the reranker on a Final, its fallbacks."""
import numpy as np
import pytest

from workbench.events import Final, Hypothesis
from workbench.lm.domain import corpus_texts
from workbench.rescoring import (LogLinearReranker, NBestError, lm_scores, oracle_errors, rerank_errors, tune)


def _swap(text: str) -> str:
    """The same words with the first two and the last two swapped: acoustically close, linguistically odd."""
    w = text.split()
    if len(w) >= 4:
        w[0], w[1], w[-1], w[-2] = w[1], w[0], w[-2], w[-1]
    return " ".join(w)


@pytest.fixture(scope="module")
def lists(smoke_corpus):
    """N-best lists where the acoustics prefer a scrambled version of the true (in-domain) sentence."""
    refs = [t for t in dict.fromkeys(corpus_texts(smoke_corpus, "train")) if 4 <= len(t.split()) <= 10][:12]
    nbests = [[Hypothesis(_swap(r), -1.0), Hypothesis(r, -1.5), Hypothesis(" ".join(r.split()[:-1]), -1.8)] for r in refs]
    return refs, nbests


def test_oracle_is_the_floor(lists):
    refs, nbests = lists
    err, words = oracle_errors(refs, nbests)
    from workbench.asr.scoring import normalize
    assert err.sum() == 0 and words.sum() == sum(len(normalize(r).split()) for r in refs)
    one_best = rerank_errors(refs, nbests, [np.zeros(len(nb)) for nb in nbests], 0.0, 0.0)
    assert one_best.sum() > 0 and (one_best >= err).all()


def test_tuning_gives_the_lm_weight_when_the_lm_knows_better(lists, tiny_lm):
    refs, nbests = lists
    s = lm_scores(tiny_lm, nbests)
    t = tune(refs, nbests, s)
    first = rerank_errors(refs, nbests, s, 0.0, 0.0).sum()
    from workbench.asr.scoring import normalize
    assert t["lambda"] > 0 and t["wer"] * sum(len(normalize(r).split()) for r in refs) < first
    assert len(t["grid"]) == 9 * 6
    with pytest.raises(NBestError, match="empty"):
        tune(refs[:1], [[]], [np.zeros(0)])
    with pytest.raises(NBestError, match="1 references, 2 n-best"):
        tune(refs[:1], nbests[:2], s[:2])


def test_reranker_reorders_a_final_and_falls_back(lists, tiny_lm):
    refs, nbests = lists
    s = lm_scores(tiny_lm, nbests)
    t = tune(refs, nbests, s)
    rr = LogLinearReranker(tiny_lm, lam=t["lambda"], beta=t["beta"])
    finals = [rr(Final("s", nb, 1.0)) for nb in nbests]
    picked = [[h.text for h in nb].index(f.text) for nb, f in zip(nbests, finals)]
    chosen = [int(np.argmax(np.array([h.score for h in nb]) + t["lambda"] * sc + t["beta"] * np.array([len(h.text.split()) for h in nb])))
              for nb, sc in zip(nbests, s)]
    assert picked == chosen                             # the reranker applies the tuned rule
    from workbench.asr.scoring import utterance_errors
    before = utterance_errors(refs, [nb[0].text for nb in nbests])[0].sum()
    assert utterance_errors(refs, [f.text for f in finals])[0].sum() < before   # and it corrects errors
    f = finals[0]
    assert sorted(h.text for h in f.nbest) == sorted(h.text for h in nbests[0]) and f.stream_id == "s"
    assert rr(Final("s", [], 1.0)).nbest == [] and rr(Final("s", nbests[0][:1], 1.0)).nbest == nbests[0][:1]
    long = [Hypothesis("call mom " * 40, -1.0), Hypothesis("call mom", -2.0)]
    assert rr(Final("s", long, 1.0)).nbest == long      # the LM cannot score it: the recogniser's order stays
