"""The speech-to-speech LM's layout (parallel streams, delay pattern) and its Llama body: codes survive the delay
pattern, labels are the next step's, a tiny model learns a turn and generates it back, and generation is bounded."""
import numpy as np
import pytest
import torch

from workbench.s2s.layout import IGNORE, Layout, LayoutError, Segment, collate
from workbench.s2s.model import GenerationError, SpeechTextLM, generate

LAY = Layout(n_text=20, n_q=3, bins=10)


def test_delay_pattern_round_trips_and_delays_each_codebook():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 10, (3, 7))
    steps = LAY.speech_steps(codes)
    assert steps.shape == (9, 3)
    for g in range(3):
        assert (steps[:g, g] == LAY.audio_pad).all() and (steps[g: g + 7, g] == codes[g]).all()
        assert (steps[g + 7:, g] == LAY.audio_pad).all()
    assert (LAY.codes_from_steps(steps) == codes).all()
    cut = steps.copy()
    cut[5, 2] = LAY.audio_pad                       # codebook 2 never wrote frame 3: the codes end before it
    assert LAY.codes_from_steps(cut).shape == (3, 3)


def test_build_labels_are_the_next_step_and_only_where_learnt():
    codes = np.arange(12).reshape(3, 4) % 10
    turn = LAY.build([Segment(text=(LAY.special("<s2s>"),)), Segment(codes=codes),
                      Segment(text=(LAY.special("<answer>"),)), Segment(text=(3, 4), learn=True),
                      Segment(text=(LAY.special("<speak>"),), learn=True), Segment(codes=codes, learn=True)])
    n = 1 + 6 + 1 + 2 + 1 + 6
    assert turn["text"].shape == (n,) and turn["audio"].shape == (n, 3)
    tl, al = turn["text_labels"], turn["audio_labels"]
    # steps: 0 task, 1-6 request, 7 <answer>, 8-9 words, 10 <speak>, 11-16 answer speech
    assert (tl[:7] == IGNORE).all() and list(tl[7:10]) == [3, 4, LAY.special("<speak>")]
    assert (al[:10] == IGNORE).all()
    assert (al[10:16] == turn["audio"][11:]).all() and (al[16] == IGNORE).all() and tl[16] == IGNORE
    assert (tl[10:16] == LAY.text_pad).all()      # the text stream learns to rest while speech is written


def test_bad_codes_and_tokens_are_typed_errors():
    with pytest.raises(LayoutError, match="shape"):
        LAY.speech_steps(np.zeros((2, 5), int))
    with pytest.raises(LayoutError, match=r"\[0, 10\)"):
        LAY.speech_steps(np.full((3, 5), 10))
    with pytest.raises(LayoutError, match="either"):
        LAY.build([Segment()])
    with pytest.raises(LayoutError, match="text ids"):
        LAY.build([Segment(text=(LAY.text_vocab,))])
    with pytest.raises(LayoutError, match="unknown control"):
        LAY.special("<sing>")


def _tiny():
    from transformers import LlamaConfig
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=LAY.text_vocab, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128)
    return SpeechTextLM(LAY, cfg)


def _turn(codes_in, answer_ids, codes_out, learn=True):
    return [Segment(text=(LAY.special("<s2s>"),)), Segment(codes=codes_in), Segment(text=(LAY.special("<answer>"),)),
            Segment(text=tuple(answer_ids), learn=learn), Segment(text=(LAY.special("<speak>"),), learn=learn),
            Segment(codes=codes_out, learn=learn)]


def test_a_tiny_model_learns_two_turns_and_generates_them_back():
    rng = np.random.default_rng(1)
    turns = [(rng.integers(0, 10, (3, 5)), [5, 6, 7], rng.integers(0, 10, (3, 6))),
             (rng.integers(0, 10, (3, 5)), [8, 9], rng.integers(0, 10, (3, 4)))]
    rows = [LAY.build(_turn(*t)) for t in turns]
    batch = collate(rows, LAY)
    assert batch["attention_mask"].sum(1).tolist() == [len(r["text"]) for r in rows]
    model = _tiny()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(250):
        loss, parts = model.loss(batch)
        first = first or float(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.05 * first, (first, float(loss))
    for (cin, words, cout), r in zip(turns, rows):
        k = 1 + cin.shape[1] + 2 + 1                     # the prefix: task, request, <answer>
        out = generate(model, torch.from_numpy(r["text"][:k]), torch.from_numpy(r["audio"][:k]))
        assert out["text"] == words and not out["truncated"]
        assert out["codes"].shape == cout.shape and (out["codes"] == cout).all()


def test_generation_is_bounded_and_checks_its_prefix():
    model = _tiny()
    h = model.text_head.in_features
    model.text_head, model.audio_head = torch.nn.Linear(h, LAY.text_vocab), torch.nn.Linear(h, 3 * LAY.audio_vocab)
    with torch.no_grad():                   # heads that say <speak> at once, then code 2 forever: never rests
        for head in (model.text_head, model.audio_head):
            head.weight.zero_()
            head.bias.zero_()
        model.text_head.bias[LAY.special("<speak>")] = 1.0
        model.audio_head.bias.view(3, LAY.audio_vocab)[:, 2] = 1.0
    t = torch.tensor([LAY.special("<s2s>"), LAY.special("<answer>")])
    a = torch.full((2, 3), LAY.audio_pad)
    out = generate(model, t, a, max_frames=5)
    assert out["truncated"] and out["codes"].shape == (3, 5) and (out["codes"] == 2).all()
    with pytest.raises(GenerationError, match="prefix"):
        generate(model, t[:0], a[:0])
    with pytest.raises(GenerationError, match="at least 1"):
        generate(model, t, a, max_frames=0)
