"""The five stages of train-s2s at toy size: each saves and reloads, stage 2 leaves the text LM as it was, stage 3
starts its task tokens at their names, DPO moves probability towards the chosen answer, and the tasks are the
turns they say they are."""
import numpy as np
import pytest
import torch

from workbench.s2s import data as D
from workbench.s2s import recipe as R
from workbench.s2s.layout import IGNORE, Layout, Segment, collate
from workbench.s2s.model import SpeechTextLM, generate


def _tiny_cfg(tmp_path):
    b = lambda: R.StageBudget(1, 1e-3, 2, 3)     # noqa: E731
    return R.S2SConfig(n_train=6, n_dev=4, stage1=b(), stage2=b(), stage4=b(), stage5=b(), workers=1, cache=False,
                       data_root=str(tmp_path / "data"), threads=2)


@pytest.mark.slow
def test_five_stages_run_save_and_reload(tmp_path):
    cfg, work, out = _tiny_cfg(tmp_path), tmp_path / "work", tmp_path / "s2s"
    with pytest.raises(R.S2SModelError, match="stage 2"):
        R.train_s2s(3, cfg, work=work)
    rec = R.train_s2s("all", cfg, work=work, out=out, log=lambda *_: None)
    assert sorted(rec) == [1, 2, 3, 4, 5] and rec[3]["steps"] == 0 and all(rec[s]["steps"] == 3 for s in (1, 2, 4, 5))
    assert all(rec[s]["curve"][0][0] == 0 and np.isfinite(rec[s]["curve"][0][1]) for s in (1, 2, 4, 5))
    lm = R.text_lm(cfg)
    s1, _, _ = R.load(work / "stage1")
    s2, tok, _ = R.load(work / "stage2")
    n = s2.layout.n_text
    # stage 2 aligned speech to a frozen text LM: its body and words are the LM's, the codec tables moved
    for k, v in lm.model.model.state_dict().items():
        if not k.startswith("embed_tokens"):
            assert torch.equal(s2.body.state_dict()[k], v), k
    assert torch.equal(s2.text_emb.weight[:n], lm.model.get_input_embeddings().weight)
    assert not torch.equal(s2.audio_emb.weight, s1.audio_emb.weight)
    # stage 3 starts <s2s> at the mean of the words "answer"
    s3, _, _ = R.load(work / "stage3")
    ids = list(D._ids(tok, "answer"))
    assert torch.allclose(s3.text_emb.weight[s3.layout.special("<s2s>")], s2.text_emb.weight[ids].mean(0))
    # the shipped model carries every stage's record and answers within its limits
    model, tok, meta = R.load(out)
    assert meta["stage"] == 5 and sorted(meta["stages"]) == ["1", "2", "3", "4", "5"]
    assert meta["preference_after"] and all(v["n"] > 0 for v in meta["preference_after"].values())
    lay = model.layout
    t = torch.tensor([lay.special("<s2s>"), lay.special("<answer>")])
    g = generate(model, t, torch.full((2, lay.n_q), lay.audio_pad), max_text=4, max_frames=3)
    assert len(g["text"]) <= 4 and g["codes"].shape[1] <= 3


def _tiny_model(lay):
    from transformers import LlamaConfig
    torch.manual_seed(0)
    return SpeechTextLM(lay, LlamaConfig(vocab_size=lay.text_vocab, hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=64))


def test_sequence_logp_is_the_training_loss_summed():
    lay = Layout(n_text=12, n_q=2, bins=6)
    rng = np.random.default_rng(0)
    turn = lay.build([Segment(text=(lay.special("<s2s>"),)), Segment(codes=rng.integers(0, 6, (2, 4))),
                      Segment(text=(3, 4), learn=True), Segment(codes=rng.integers(0, 6, (2, 3)), learn=True)])
    batch = collate([turn], lay)
    model = _tiny_model(lay).eval()
    with torch.no_grad():
        _, parts = model.loss(batch)
        lp = float(R.sequence_logp(model, batch)[0])
    n_text = int((batch["text_labels"] != IGNORE).sum())
    n_audio = int((batch["audio_labels"] != IGNORE).sum())
    assert lp == pytest.approx(-(parts["text"] * n_text + parts["audio"] * n_audio), rel=1e-4)


def test_dpo_moves_probability_to_the_chosen_answer():
    import copy
    lay = Layout(n_text=12, n_q=2, bins=6)
    rng = np.random.default_rng(1)
    req = rng.integers(0, 6, (2, 4))
    turn = lambda words, codes: lay.build([Segment(text=(lay.special("<s2s>"),)), Segment(codes=req),  # noqa
                                           Segment(text=(lay.special("<answer>"),)),
                                           Segment(text=words, learn=True), Segment(codes=codes, learn=True)])
    chosen = collate([turn((3, 4), rng.integers(0, 6, (2, 3)))], lay)
    rejected = collate([turn((5, 6), rng.integers(0, 6, (2, 3)))], lay)
    policy = _tiny_model(lay)
    reference = copy.deepcopy(policy).eval()
    loss, margin = R.dpo_loss(policy, reference, chosen, rejected, beta=0.1)
    assert float(loss) == pytest.approx(np.log(2), abs=1e-5) and float(margin) == pytest.approx(0, abs=1e-5)
    gap = lambda m: float(R.sequence_logp(m, chosen) - R.sequence_logp(m, rejected))  # noqa: E731
    start = gap(policy)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-2)
    for _ in range(20):
        loss, margin = R.dpo_loss(policy, reference, chosen, rejected, beta=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert gap(policy) > start + 1.0 and float(loss) < np.log(2) - 0.1


def _row(lay, rng, intent="set-timer", arousal="excited", words=None):
    words = words or [["okay", 0.0, 0.3], ["ten", 0.35, 0.6], ["minutes", 0.62, 1.1]]
    return {"id": f"r-{intent}", "text": "set a timer for ten minutes", "response_text": "Okay, ten minutes.",
            "response_tagged": "[excited] Okay, ten minutes.", "response_words": words, "words": words,
            "arousal": arousal, "task": "dialogue", "frames": [{"intent": intent}],
            "request_codes": rng.integers(0, lay.bins, (lay.n_q, 30)),
            "response_codes": rng.integers(0, lay.bins, (lay.n_q, 28))}


def test_interleaved_turns_switch_modality_at_word_times():
    from workbench.lm.domain import load_domain_lm
    tok = load_domain_lm().tokenizer
    lay = Layout(n_text=len(tok), n_q=8, bins=1000)
    rng = np.random.default_rng(0)
    row = _row(lay, rng)
    seen_speech = 0
    for seed in range(6):
        segs = D.interleaved(lay, tok, row, np.random.default_rng(seed))
        kinds = [s.codes is not None for s in segs[1:]]
        assert all(a != b for a, b in zip(kinds, kinds[1:]))           # text and speech alternate
        assert all(s.learn for s in segs[1:])
        for s in segs[1:]:
            if s.codes is not None:
                seen_speech += 1
                starts = [round(w[1] * 25) for w in row["response_words"]] + [28]
                a = next(i for i in range(28) if (row["response_codes"][:, i:i + s.codes.shape[1]] == s.codes).all())
                assert a in starts                                      # a span starts where a word starts
        lay.build(segs)
    assert seen_speech


def test_preference_pairs_reject_the_wrong_content_and_the_wrong_mood():
    from workbench.lm.domain import load_domain_lm
    tok = load_domain_lm().tokenizer
    lay = Layout(n_text=len(tok), n_q=8, bins=1000)
    rng = np.random.default_rng(0)
    rows = [_row(lay, rng, "set-timer"), _row(lay, rng, "call", arousal="neutral")]
    against = {rows[0]["id"]: {"tagged": "[calm] Okay, ten minutes.", "codes": rng.integers(0, 1000, (8, 20))}}
    pairs = D.preference_pairs(lay, tok, rows, against, rng)
    assert sorted(k for _, _, k in pairs) == ["content", "content", "prosody"]
    for chosen, rejected, kind in pairs:
        c, r = lay.build(chosen[:3]), lay.build(rejected[:3])            # the same request
        assert (c["text"] == r["text"]).all() and (c["audio"] == r["audio"]).all()
        if kind == "prosody":
            assert rejected[3].text == D._ids(tok, "[calm] Okay, ten minutes.")
            assert rejected[3].text != chosen[3].text
    from workbench.s2s.dialogues import FOLLOW
    assert all(D.AGAINST[m] != FOLLOW[m] for m in D.AGAINST)
