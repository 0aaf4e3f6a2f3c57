"""The large TTS and its baseline: duration targets that tile the audio, the LLM trained in tandem (its LoRA
adapters move, its own weights do not), save/load that reproduces the output, typed errors, and the bench's
filler and style accounting."""
import numpy as np
import pytest
import torch

from workbench.tts import StageDirectionError
from workbench.tts.bench import filler_recall
from workbench.tts.tandem import style_rows
from workbench.tts.corpus import ExpressiveConfig, _render, build, elements
from workbench.tts.frontend import align, phonemise
from workbench.tts.ltts import TTSConfig, TTSModelError, load_synthesiser, new_synthesiser, vocabulary
from workbench.tts.prosody import realisation
from workbench.tts.render import render_espeak


def test_elements_tile_the_utterance_with_tags_where_they_act():
    tagged = "[calm] Okay, ten minutes. [pause] [excited] Starting [um] now."
    r = render_espeak(tagged)
    els, starts = elements(tagged, r)
    assert els == ["[calm]", "Okay,", "ten", "minutes.", "[pause]", "[excited]", "Starting", "[um]", "now."]
    assert starts == sorted(starts) and starts[0] == 0.0
    words = {w: (a, b) for w, a, b in r.words}
    assert starts[4] == pytest.approx(words["minutes."][1])                  # the pause starts where speech ends
    assert starts[5] - starts[4] == pytest.approx(0.45, abs=0.01)             # ... and lasts what was asked
    assert starts[7] == pytest.approx(words["um,"][0])                        # the filler tag owns the filler
    els, starts = elements("[soft] When should [slow] [pause] I go?", render_espeak("[soft] When should [slow] [pause] I go?"))
    assert starts == sorted(starts) and starts[3] == starts[4]      # a delivery before a pause: at the pause


def test_symbols_are_espeak_phonemes_per_word_with_tags_owning_their_time():
    tagged = "[calm] Okay, ten minutes. [pause] [excited] Starting [um] now."
    r = render_espeak(tagged)
    s = align(tagged, r)
    els = s.elements
    assert [s.names[i] for i, o in enumerate(s.owner) if els[o] == "ten"] == ["t", "E", "n"]
    assert s.starts == sorted(s.starts)
    i_pause, i_exc = s.names.index("[pause]"), s.names.index("[excited]")
    assert s.starts[i_exc] - s.starts[i_pause] == pytest.approx(0.45, abs=0.01)   # the pause tag spans its silence
    um = [s.names[i] for i, o in enumerate(s.owner) if els[o] == "[um]"]
    assert um[0] == "[um]" and "m" in um                                          # the filler's own phonemes
    assert phonemise(tagged).names == s.names                                    # synthesis reads the same symbols


def test_duration_targets_sum_to_the_frames():
    item = _render(("train", 3, ExpressiveConfig()))
    syn = new_synthesiser(TTSConfig(system="baseline"), vocabulary([item]))
    assert syn.ids(["zz-never-seen"]) == [1]                                     # <unk>
    t = syn.targets(item)
    assert 2 * int(t["durations"].sum()) == len(t["feats"]) >= len(item["params"]) - 1
    assert len(t["durations"]) == len(t["ids"]) + 1 and int(t["durations"][-1]) == 0   # FastSpeech2's eos
    assert t["pitch"].shape == t["energy"].shape == (len(t["ids"]) + 1, 1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from workbench.tts.recipe import TrainTTSConfig, train_tts
    out = {}
    for system in ("ltts", "baseline"):
        cfg = TrainTTSConfig(tts=TTSConfig(system=system, dlayers=1, elayers=1, units=128, adim=64), n_train=16,
                             n_dev=4, batch_size=4, max_steps=4, val_every=2, warmup_steps=1, threads=1, workers=1,
                             cache=False, calibrate_texts=1)
        d = tmp_path_factory.mktemp(system)
        out[system] = (train_tts(out=d / "m", cfg=cfg, log=lambda *a: None), d / "m")
    return out


def test_ltts_trains_the_llm_in_tandem_and_reloads_exactly(trained):
    from workbench.lm.load import load_causal_lm
    from workbench.tts.ltts import _lm_folder
    meta, folder = trained["ltts"]
    assert meta["steps"] == 4 and meta["trainable_params"] < meta["params"]
    syn = load_synthesiser(folder)
    assert syn.meta["fidelity"]["tags"] == meta["fidelity"]                # the tags' realisation, stored
    base = load_causal_lm(_lm_folder("domain")).model
    lm = syn.fs2.encoder.llm.lm
    w_saved = lm.model.layers[0].self_attn.q_proj.weight
    w_base = base.model.layers[0].self_attn.q_proj.weight
    assert not torch.allclose(w_saved, w_base.float(), atol=1e-4)           # LoRA (merged) moved the LM ...
    assert torch.allclose(lm.model.embed_tokens.weight, base.model.embed_tokens.weight.float(),
                          atol=1e-2)                                         # ... and only through its adapters
    with pytest.raises(StageDirectionError, match="too long for the LTTS"):
        syn.synthesise(" ".join(["go"] * 120))                               # past the LM's positions: typed
    a = syn.synthesise("[excited] Your timer is done!")
    assert a.dtype == np.float32 and len(a) > 0
    assert np.allclose(a, load_synthesiser(folder).synthesise("[excited] Your timer is done!"), atol=1e-5)


def test_baseline_has_its_own_encoder_and_bad_input_is_typed(trained, tmp_path):
    _, folder = trained["baseline"]
    syn = load_synthesiser(folder)
    assert not hasattr(syn.fs2.encoder, "llm") and syn.tokenizer is None
    for bad, what in (("", "empty"), ("[shouting] hi", "unknown"), ("привет", "another script")):
        with pytest.raises(StageDirectionError, match=what):
            syn.synthesise(bad)
    with pytest.raises(TTSModelError, match="train-tts"):
        load_synthesiser(tmp_path)
    with pytest.raises(TTSModelError, match="system"):
        TTSConfig(system="tacotron")


def test_bench_counts_fillers_and_scores_style_per_attribute():
    assert filler_recall(["[um] yes", "no [uh] way", "plain"], ["um yes", "no way", "plain"])["k"] == 1
    rows = style_rows(lambda t: render_espeak(t).audio, ["your timer is done"], ["fast", "slow", "loud", "soft"])
    res = realisation(rows)
    assert res["rate"]["spearman"]["value"] > 0.5 and res["volume"]["spearman"]["value"] > 0.5


def test_corpus_build_rejects_an_unknown_split():
    with pytest.raises(ValueError, match="split"):
        build("validation", 2)
