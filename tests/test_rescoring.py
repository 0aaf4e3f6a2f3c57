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
    assert len(t["grid"]) == 9 * 9
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
    from workbench.asr.scoring import normalize
    chosen = [int(np.argmax(np.array([h.score for h in nb]) + t["lambda"] * sc
                            + t["beta"] * np.array([len(normalize(h.text).split()) for h in nb])))
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



def test_pruned_reranker_reads_only_the_top_k_and_matches_the_tuning_rule(lists, tiny_lm, monkeypatch):
    """top_k: the LM scores only the k hypotheses best by acoustic + beta * words; what tuning simulates with
    ``rerank_errors(top_k=)`` is what the live reranker picks; k = the list length is no pruning."""
    from workbench.rescoring import choose_top_k, pruned
    from workbench.rescoring import loglinear
    refs, nbests = lists
    feats = (np.array([-1.0, -2.9, -1.2, -0.5]), np.array([3, 5, 4, 1]))
    assert pruned(feats, 0.0, 2).tolist() == [0, 3] and pruned(feats, 1.0, 2).tolist() == [1, 2]
    assert pruned(feats, 1.0, None).tolist() == [0, 1, 2, 3] and pruned(feats, 1.0, 9).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="top_k"):
        pruned(feats, 1.0, 0)
    nbs = [nb + [Hypothesis(_swap(r) + " please", -4.0)] for r, nb in zip(refs, nbests)]
    s = lm_scores(tiny_lm, nbs)
    seen = []
    real = loglinear.text_scores
    monkeypatch.setattr(loglinear, "text_scores", lambda lm, texts, *a, **k: seen.append(len(texts)) or real(lm, texts, *a, **k))
    for k in (1, 2, 3, 4):
        rr = LogLinearReranker(tiny_lm, lam=1.0, beta=0.5, top_k=k)
        picked = [[h.text for h in nb].index(rr(Final("s", nb, 1.0)).text) for nb in nbs]
        errs = rerank_errors(refs, nbs, s, 1.0, 0.5, top_k=k)
        from workbench.asr.scoring import utterance_errors
        assert utterance_errors(refs, [nb[i].text for nb, i in zip(nbs, picked)])[0].tolist() == errs.tolist()
        assert set(seen) <= {min(k, 4)} and (k == 1 or seen)       # k = 1: nothing to compare, no LM call
        seen.clear()
    full = rerank_errors(refs, nbs, s, 1.0, 0.5)
    assert rerank_errors(refs, nbs, s, 1.0, 0.5, top_k=4).tolist() == full.tolist()
    r = LogLinearReranker(tiny_lm, lam=1.0, beta=0.5, top_k=2)(Final("s", nbs[0], 1.0))
    assert sorted(h.text for h in r.nbest) == sorted(h.text for h in nbs[0])   # pruned ones follow, none lost
    ch = choose_top_k(refs, nbs, s, 1.0, 0.5, ks=(1, 2, 3))
    by_k = dict(ch["curve"])
    from workbench.asr.scoring import normalize
    assert ch["wer_all"] == pytest.approx(full.sum() / sum(len(normalize(r_).split()) for r_ in refs))
    if ch["top_k"] is not None:
        assert by_k[ch["top_k"]] <= ch["wer_all"] + ch["tolerance"]
        assert all(by_k[k] > ch["wer_all"] + ch["tolerance"] for k in by_k if k < ch["top_k"])

def test_lists_the_lm_cannot_score_stay_in_the_recognisers_order(lists, tiny_lm):
    from workbench.lm import LMInputError
    refs, nbests = lists
    long = [Hypothesis("call mom " * 40, -1.0), Hypothesis("call mom", -2.0)]
    with pytest.raises(LMInputError):
        lm_scores(tiny_lm, nbests[:1] + [long])
    s = lm_scores(tiny_lm, nbests[:2] + [long], strict=False)
    assert s[2] is None and np.allclose(s[0], lm_scores(tiny_lm, nbests[:1])[0])
    e = rerank_errors(refs[:2] + ["call mom"], nbests[:2] + [long], s, 1.0, 5.0)
    assert e[2] == 78                           # the first hypothesis, as the reranker's fallback keeps it
    assert LogLinearReranker(tiny_lm, 1.0, 5.0)(Final("s", long, 1.0)).text == long[0].text
    # tuning counts that list as the fallback leaves it, the same 78 errors at every grid point
    from workbench.asr.scoring import normalize
    W = sum(len(normalize(r).split()) for r in refs[:2])
    with_long, without = tune(refs[:2] + ["call mom"], nbests[:2] + [long], s), tune(refs[:2], nbests[:2], s[:2])
    for (l1, b1, w1), (l2, b2, w2) in zip(with_long["grid"], without["grid"]):
        assert (l1, b1) == (l2, b2) and w1 * (W + 2) == pytest.approx(w2 * W + 78)


# -- the LLM fine-tuned to rerank (MWER) --------------------------------------------------------------------

def test_mwer_loss_is_the_expected_errors_above_the_mean():
    import torch
    from workbench.rescoring.mwer import mwer_loss
    s = torch.tensor([0.0, float(np.log(3.0))])           # softmax: 0.25, 0.75
    assert mwer_loss(s, torch.tensor([2.0, 0.0])).item() == pytest.approx(0.25 * 1 - 0.75 * 1)
    assert mwer_loss(s, torch.tensor([1.0, 1.0])).item() == 0.0       # same errors: nothing to learn


def test_training_lists_keep_only_lists_that_teach(lists):
    from workbench.rescoring.mwer import training_lists
    refs, nbests = lists
    same = [[Hypothesis(refs[0], -1.0), Hypothesis(refs[0] + " ", -2.0)]]   # equal after normalisation
    out = training_lists([refs[0]] + refs, same + nbests, max_hyps=2)
    assert len(out) == len(refs) and all(len(L["texts"]) == 2 for L in out)
    assert out[0]["texts"][1] == refs[0] and out[0]["errors"][1] == 0 < out[0]["errors"][0]


@pytest.fixture(scope="module", params=["head", "lm"])
def mwer_dir(lists, tiny_lm, tmp_path_factory, request):
    """A tiny MWER reranker: the acoustics prefer the scrambled sentence. "lm": training starts from an LM
    weight too small to overrule them (0.1); "head": from a zero score head (the word bonus alone, here 0).
    Either way the dev errors can only fall by learning."""
    from workbench.rescoring.mwer import MWERConfig, train_mwer
    refs, nbests = lists
    out = tmp_path_factory.mktemp("mwer") / "reranker"
    cfg = MWERConfig(scorer=request.param, top_layers=1, lr=5e-2, weight_lr=0.5, lists_per_step=3, max_steps=30,
                     val_every=10, threads=1, train_weights=("w_lm", "w_len"))
    rec = train_mwer(tiny_lm, refs[:8], nbests[:8], refs[8:], nbests[8:], out, cfg, init={"lambda": 0.0, "beta": 0.0},
                     log=None)
    return out, rec


def test_mwer_training_lowers_dev_errors_and_keeps_the_best(mwer_dir, lists, tiny_lm):
    import json
    out, rec = mwer_dir
    hist = rec["history"]
    refs, nbests = lists
    if rec["scorer"] == "lm":
        assert hist[0]["step"] == 0 and hist[0]["w_lm"] == pytest.approx(0.1)  # the zero-shot start is measured
    else:                                      # a zero head: the start is the recogniser's order (beta 0 here)
        from workbench.asr.scoring import utterance_errors
        e, w = utterance_errors(refs[8:], [nb[0].text for nb in nbests[8:]])
        assert hist[0]["step"] == 0 and hist[0]["w_lm"] == 1.0 and hist[0]["dev_wer"] == pytest.approx(e.sum() / w.sum())
        assert all(h["w_lm"] == 1.0 for h in hist)                            # the head's scale is what learns
    assert rec["dev_wer"] == min(h["dev_wer"] for h in hist) < hist[0]["dev_wer"]
    assert json.loads((out / "reranker.json").read_text())["dev_wer"] == rec["dev_wer"]
    assert rec["train_lists"] == 8 and rec["trainable_params"] > 2
    # the caller's LM is untouched (peft works on a copy)
    assert not any("lora" in n for n, _ in tiny_lm.model.named_parameters())


def test_mwer_reranker_loads_and_applies_its_trained_weights(mwer_dir, lists, tiny_lm):
    from workbench.rescoring.mwer import RerankerError, load_mwer_reranker
    from workbench.asr.scoring import utterance_errors
    out, rec = mwer_dir
    rr = load_mwer_reranker(out, device="cpu")                  # the base LM by the path recorded in training
    before = lm_scores(tiny_lm, lists[1][:2])
    given = load_mwer_reranker(out, base=tiny_lm)               # a loaded base: merged into a copy, not into it
    assert all(np.array_equal(a, b) for a, b in zip(before, lm_scores(tiny_lm, lists[1][:2])))
    assert (given.lam, given.beta) == (rr.lam, rr.beta)
    assert (rr.lam, rr.beta) == pytest.approx((rec["w_lm"], rec["w_len"]))
    refs, nbests = lists
    dev_refs, dev_nb = refs[8:], nbests[8:]
    after = utterance_errors(dev_refs, [rr(Final("s", nb, 1.0)).text for nb in dev_nb])[0].sum()
    assert after / sum(len(r.split()) for r in dev_refs) == pytest.approx(rec["dev_wer"])
    # the adapter changed the LM: its scores differ from the base model's
    assert not np.allclose(lm_scores(rr.lm, dev_nb[:2])[0], lm_scores(tiny_lm, dev_nb[:2])[0])
    from workbench.lm import HeadLM
    assert isinstance(rr.lm, HeadLM) == (rec["scorer"] == "head")
    if rec["scorer"] == "head":      # bfloat16 (what the bench's fast variant loads) ranks the same lists alike
        import shutil
        import torch
        half = load_mwer_reranker(out, device="cpu", dtype=torch.bfloat16)
        assert [half(Final("s", nb, 1.0)).text for nb in dev_nb] == [rr(Final("s", nb, 1.0)).text for nb in dev_nb]
        (out.parent / "no_head").mkdir()
        for f in out.iterdir():
            if f.name != "score_head.safetensors":
                shutil.copy(f, out.parent / "no_head" / f.name)
        with pytest.raises(RerankerError, match="score head"):
            load_mwer_reranker(out.parent / "no_head", device="cpu")
    with pytest.raises(RerankerError, match="no reranker.json"):
        load_mwer_reranker(out.parent, device="cpu")
    (out.parent / "broken").mkdir()
    (out.parent / "broken" / "reranker.json").write_text("{not json")
    with pytest.raises(RerankerError, match="unreadable"):
        load_mwer_reranker(out.parent / "broken", device="cpu")
    (out.parent / "no_adapter").mkdir()
    (out.parent / "no_adapter" / "reranker.json").write_text((out / "reranker.json").read_text())
    with pytest.raises(RerankerError, match="adapter does not load"):
        load_mwer_reranker(out.parent / "no_adapter", device="cpu")
    # a hypothesis with no words is scored (its end symbol alone), not refused
    empty = [Hypothesis("", -1.0), Hypothesis(refs[0], -1.2)]
    assert {h.text for h in rr(Final("s", empty, 1.0)).nbest} == {"", refs[0]}


def test_bench_scores_every_reranker_with_one_accounting(smoke_corpus, tiny_nemo, tiny_lm, mwer_dir, tmp_path):
    import json
    from workbench.asr.scoring import utterance_errors
    from workbench.rescoring.bench import run
    from workbench.rescoring.evaluation import BASELINE
    from workbench.rescoring.nbest import nbest_set
    res = run(tiny_nemo, smoke_corpus, n=6, n_dev=6, beam=4, lms={"domain LM (tiny)": (tiny_lm, "")},
              finetuned_path=mwer_dir[0], out_dir=tmp_path / "out", results_dir=tmp_path / "results",
              sets={"test": "test"}, cache_dir=tmp_path / "nbest", log=None)
    saved = json.loads((tmp_path / "results" / "bench_rescoring.json").read_text())
    assert saved["sets"]["test"]["n"] == 6 and (tmp_path / "out" / "rescoring.png").exists()
    r = res["sets"]["test"]
    names = list(r["systems"])
    assert names[:3] == [BASELINE, "word bonus, no LM", "domain LM (tiny)"] and "fine-tuned" in names[3]
    ns = nbest_set(tiny_nemo, smoke_corpus, "test", 6, 4, cache_dir=tmp_path / "nbest")     # read from the cache
    e1, w = utterance_errors(ns.refs, [nb[0].text for nb in ns.nbests])
    assert r["systems"][BASELINE]["wer"]["value"] == pytest.approx(e1.sum() / w.sum())
    for name in names:
        row = r["systems"][name]
        assert row["wer"]["value"] >= r["oracle"]["wer"]["value"] - 1e-12          # the oracle is the floor
        assert row["latency_ms"]["p95"]["value"] >= row["latency_ms"]["p50"]["value"] >= 0
        if name != BASELINE:
            rel = row["wer"]["value"] / r["systems"][BASELINE]["wer"]["value"] - 1
            assert row["relative_change"]["value"] == pytest.approx(rel)
        if name not in (BASELINE, "word bonus, no LM"):                          # what reading the text adds
            vs = row["wer"]["value"] / r["systems"]["word bonus, no LM"]["wer"]["value"] - 1
            assert row["relative_change_vs_word_bonus"]["value"] == pytest.approx(vs)
        else:
            assert "relative_change_vs_word_bonus" not in row
    assert res["systems"]["domain LM (tiny)"]["lambda"] in (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5)
    # the fine-tuned reranker again, cheaper: bfloat16, the LM reading only the top k (k chosen on dev)
    fast = [n for n in names if n.startswith("the same,")]
    assert len(fast) == 1 and res["systems"][fast[0]]["dtype"] == "bfloat16"
    k = res["systems"][fast[0]]["top_k"]
    assert k["top_k"] is None or k["wer"] <= k["wer_all"] + k["tolerance"]
    assert res["headline_fast"]["system"] == fast[0]
    from workbench.reports.figures import rescoring
    assert "bfloat16" in rescoring(saved) and fast[0] in rescoring(saved) and "vs the word bonus" in rescoring(saved)
    # what a widget applies live: the weights this bench tuned, read back from its JSON
    from workbench.rescoring.evaluation import domain_reranker
    live = domain_reranker(tmp_path / "results", lm=tiny_lm)
    assert (live.lam, live.beta) == (res["systems"]["domain LM (tiny)"]["lambda"], res["systems"]["domain LM (tiny)"]["beta"])
    with pytest.raises(FileNotFoundError, match="bench rescoring"):
        domain_reranker(tmp_path / "nowhere", lm=tiny_lm)


# -- the reranker inside the recogniser: every Final a stream, a batch or the microphone widget emits ---------

def _reverse(final):
    """A reranker whose effect cannot be missed: the recogniser's list, last first."""
    from dataclasses import replace
    return replace(final, nbest=final.nbest[::-1])


def test_recogniser_reranks_every_final_streamed_batched_and_in_the_widget(shipped_model, test_audio):
    from workbench.asr.streaming import StreamingRecognizer, transcribe_batch, transcribe_streaming
    from workbench.endpoint import PauseEndpointer
    from workbench.widgets import MicCapture
    plain = StreamingRecognizer(shipped_model, [70, 13], nbest=8)
    rec = StreamingRecognizer(shipped_model, [70, 13], nbest=8, reranker=_reverse)
    want = [transcribe_streaming(plain, a)[-1] for a in test_audio]
    assert any(len(f.nbest) > 1 for f in want)                      # something to reorder
    got = [transcribe_streaming(rec, a)[-1] for a in test_audio]
    assert [[h.text for h in f.nbest] for f in got] == [[h.text for h in f.nbest][::-1] for f in want]
    assert len(rec.rerank_ms) == len(test_audio) and min(rec.rerank_ms) >= 0
    batched = [ev[-1] for ev in transcribe_batch(rec, test_audio)]
    assert [f.text for f in batched] == [f.text for f in got] and len(rec.rerank_ms) == 2 * len(test_audio)
    mic = MicCapture()
    session = mic.connect(rec, PauseEndpointer(300))
    mic.feed(test_audio[0])
    quantised = (np.clip(test_audio[0], -1, 1) * 32767).astype(np.int16).astype(np.float32) / 32768.0
    assert mic.transcript == session.final.text == _reverse(transcribe_streaming(plain, quantised, frame_ms=100)[-1]).text
    with pytest.raises(ValueError, match="nbest >= 2"):
        StreamingRecognizer(shipped_model, [70, 13], reranker=_reverse)


def test_recogniser_with_a_language_model_reranker(shipped_model, test_audio, tiny_lm):
    from workbench.asr.streaming import StreamingRecognizer, transcribe_streaming
    rr = LogLinearReranker(tiny_lm, lam=0.5, beta=1.0)
    plain = StreamingRecognizer(shipped_model, [70, 13], nbest=8)
    rec = StreamingRecognizer(shipped_model, [70, 13], nbest=8, reranker=rr)
    for a in test_audio:
        assert transcribe_streaming(rec, a)[-1].text == rr(transcribe_streaming(plain, a)[-1]).text
