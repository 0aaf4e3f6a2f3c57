"""Hearing the model answer: one request end to end through the codec's decoder, bounded, and scored by the same
judges a trained model meets."""
import numpy as np
import torch

from workbench.codec.model import load_codec
from workbench.lm.domain import load_domain_lm
from workbench.s2s.evaluation import evaluate
from workbench.s2s.pipeline import answer
from workbench.s2s.layout import Layout
from workbench.s2s.model import SpeechTextLM


def _rows(lay, rng, n=2):
    return [{"text": "set a timer for ten minutes", "response_text": "Okay, ten minutes, starting now.",
             "response_tagged": "Okay, ten minutes, starting now.", "said_back": {"quant": "ten", "unit": "minutes"},
             "task": "dialogue", "frames": [{"intent": "set-timer", "quant": "ten", "unit": "minutes"}],
             "request_codes": rng.integers(0, lay.bins, (lay.n_q, 40))} for _ in range(n)]


def test_an_untrained_model_answers_within_its_limits_and_is_judged():
    from transformers import LlamaConfig
    codec, tok = load_codec(), load_domain_lm().tokenizer
    lay = Layout(n_text=len(tok), n_q=codec.cfg.n_q, bins=codec.cfg.bins)
    torch.manual_seed(0)
    model = SpeechTextLM(lay, LlamaConfig(vocab_size=lay.text_vocab, hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                          max_position_embeddings=256))
    rows = _rows(lay, np.random.default_rng(0))
    out = answer(model, tok, codec, rows[0], max_text=5, max_frames=12)
    assert out["frames"] <= 12 and len(out["audio"]) == out["frames"] * 640
    res = evaluate(model, tok, codec, rows, max_frames=12)
    assert res["n"] == 2 and res["task_success"]["value"] == 0.0        # noise does not set a timer
    assert 0 <= res["wer_whisper"]["value"] and len(res["examples"]) == 2


def _tiny(codec, tok):
    from transformers import LlamaConfig
    lay = Layout(n_text=len(tok), n_q=codec.cfg.n_q, bins=codec.cfg.bins)
    torch.manual_seed(0)
    return SpeechTextLM(lay, LlamaConfig(vocab_size=lay.text_vocab, hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=256))


def test_bad_request_audio_is_a_typed_error_naming_what_was_wrong():
    import pytest
    from workbench.s2s.pipeline import RequestError, check_request
    ok = np.zeros(16000, np.float32)
    for bad, why in [(np.zeros((2, 16000), np.float32), "mono"), (np.zeros(16000, np.int16), "float"),
                     (np.zeros(0, np.float32), "empty"), (np.zeros(16000 * 11, np.float32), "limit"),
                     (np.full(1600, np.nan, np.float32), "NaN")]:
        with pytest.raises(RequestError, match=why):
            check_request(bad)
    with pytest.raises(RequestError, match="16000 Hz"):
        check_request(ok, 8000)
    assert check_request(ok).dtype == np.float32


def test_silence_and_noise_get_the_spoken_fallback_and_a_long_request_never_generates():
    import pytest
    from workbench.s2s.pipeline import FALLBACK, RequestError, SpeechToSpeech, answer
    codec, tok = load_codec(), load_domain_lm().tokenizer
    s2s = SpeechToSpeech(_tiny(codec, tok), tok, codec, max_text=4, max_frames=8)
    rng = np.random.default_rng(0)
    for audio in (np.zeros(16000, np.float32), (0.05 * rng.standard_normal(16000)).astype(np.float32)):
        out = s2s.respond(audio)
        assert out["fallback"] and out["text"] == FALLBACK and len(out["audio"]) > 8000
    # a request whose codes leave no room for an answer in the model's positions: refused before generating
    row = {"request_codes": rng.integers(0, codec.cfg.bins, (codec.cfg.n_q, 240)), "task": "dialogue"}
    with pytest.raises(RequestError, match="positions"):
        answer(s2s.model, tok, codec, row, max_text=4, max_frames=8)


def test_parser_graphs_read_back_the_meaning_the_dialogues_were_built_from():
    from workbench.data import templates as T
    from workbench.repair.graph import gold_graph
    from workbench.s2s.pipeline import frames_from_graph
    from workbench.s2s.dialogues import meaning
    rng = np.random.default_rng(3)
    checked = 0
    for t in T.HELD_OUT_TEMPLATES[:12]:
        import re
        text = re.sub(r"\{(\w+)\}", lambda m: T.SLOTS[m.group(1)](rng), t.text)
        want = meaning(t.text, text)
        got = frames_from_graph(gold_graph({"template": t.text, "text": text}))
        assert [(f.intent, f.values) for f in got] == [(f.intent, f.values) for f in want], (t.text, text)
        checked += 1
    assert checked == 12


def test_the_cascade_answers_what_it_understood_and_falls_back_on_what_it_did_not():
    from workbench.s2s.pipeline import FALLBACK, Cascade
    from workbench.tts.render import render_espeak
    c = Cascade()
    tagged, frames = c.understand("set a timer for ten minutes")
    assert frames and frames[0].intent == "set-timer" and "ten minutes" in tagged.lower()
    assert c.understand("")[0] == FALLBACK and c.understand("zxq blorf wibble")[0] == FALLBACK
    out = c.respond(render_espeak("set a timer for ten minutes").audio)
    assert out["heard"] and len(out["audio"]) > 16000 and out["first_audio_s"] > 0
    assert c.respond(np.zeros(16000, np.float32))["fallback"]


def test_arousal_index_hears_an_excited_request_above_a_tired_one():
    from workbench.s2s.evaluation import arousal
    from workbench.s2s.dialogues import AROUSAL, speakers_for
    from workbench.tts.render import render_espeak
    spk = speakers_for("dev")[:3]
    text = "can you turn the kitchen lights on for me"
    audios = []
    for s in spk:
        for mood in ("tired", "excited"):
            audios.append(render_espeak(text, s, base=AROUSAL[mood]).audio)
    idx, _ = arousal(audios)
    assert all(idx[2 * k + 1] > idx[2 * k] for k in range(len(spk)))
