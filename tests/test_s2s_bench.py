"""Hearing the model answer: one request end to end through the codec's decoder, bounded, and scored by the same
judges a trained model meets."""
import numpy as np
import torch

from workbench.codec.model import load_codec
from workbench.lm.domain import load_domain_lm
from workbench.s2s.bench import answer, evaluate
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
