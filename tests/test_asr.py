"""Streaming ASR on NeMo: streaming equals offline at every lookahead, batched equals alone, loading, recipe."""
import time

import numpy as np
import pytest
import torch

from workbench.events import EndOfUtterance, Final, Partial

CONTEXTS = [[70, 0], [70, 1], [70, 4], [70, 13]]


def offline(model, audio):
    with torch.inference_mode():
        x = torch.from_numpy(audio).unsqueeze(0)
        f, fl = model.preprocessor(input_signal=x, length=torch.tensor([len(audio)]))
        enc, el = model.encoder(audio_signal=f, length=fl)
        logp = model.ctc_decoder(encoder_output=enc)[0, :el[0]]
        hyp = model.decoding.rnnt_decoder_predictions_tensor(encoder_output=enc, encoded_lengths=el,
                                                             return_hypotheses=True)[0]
    return logp.numpy(), [int(t) for t in hyp.y_sequence]


@pytest.mark.parametrize("ctx", CONTEXTS, ids=lambda c: f"lookahead{c[1]}")
def test_streaming_equals_offline(tiny_model, test_audio, ctx):
    from workbench.asr.streaming import StreamingRecognizer, transcribe_streaming
    rec = StreamingRecognizer(tiny_model, ctx)           # also sets the offline attention mask
    for audio in test_audio[:2]:
        events = transcribe_streaming(rec, audio, frame_ms=30)
        partials = [e for e in events if isinstance(e, Partial)]
        final = events[-1]
        assert isinstance(final, Final)
        ref_logp, ref_tokens = offline(tiny_model, audio)
        # P(<EOU>) per frame and the encoder output arrive with every step; together they cover all frames
        eou = np.concatenate([p.eou_prob for p in partials])
        assert len(eou) == len(ref_logp)
        assert np.abs(eou - np.exp(ref_logp[:, tiny_model.eou_token])).max() < 1e-5
        enc = np.concatenate([p.encoder_output for p in partials])
        assert enc.shape == (len(ref_logp), tiny_model.encoder.d_model)
        assert final.nbest[0].tokens == ref_tokens
        assert partials[-1].encoder_frames == len(ref_logp)


def test_frame_size_does_not_matter(tiny_model, test_audio):
    from workbench.asr.streaming import StreamingRecognizer, transcribe_streaming
    rec = StreamingRecognizer(tiny_model, [70, 1])
    a = transcribe_streaming(rec, test_audio[0], frame_ms=30)
    b = transcribe_streaming(rec, test_audio[0], frame_ms=370)
    assert a[-1].nbest[0].tokens == b[-1].nbest[0].tokens
    assert np.allclose(np.concatenate([e.eou_prob for e in a if isinstance(e, Partial)]),
                       np.concatenate([e.eou_prob for e in b if isinstance(e, Partial)]), atol=1e-6)


@pytest.mark.parametrize("ctx", [[70, 0], [70, 13]], ids=lambda c: f"lookahead{c[1]}")
def test_batched_steps_equal_streams_alone(tiny_model, test_audio, ctx):
    from workbench.asr.streaming import StreamingRecognizer, transcribe_batch, transcribe_streaming
    rec = StreamingRecognizer(tiny_model, ctx)
    together = transcribe_batch(rec, test_audio)          # different lengths: streams finish at different steps
    for audio, ev in zip(test_audio, together):
        alone = transcribe_streaming(rec, audio)
        assert ev[-1].nbest[0].tokens == alone[-1].nbest[0].tokens
        pa = np.concatenate([e.eou_prob for e in alone if isinstance(e, Partial)])
        pb = np.concatenate([e.eou_prob for e in ev if isinstance(e, Partial)])
        assert np.abs(pa - pb).max() < 1e-5


def test_bad_input_leaves_the_stream_intact(tiny_model, test_audio):
    from workbench.asr.streaming import StreamingRecognizer
    from workbench.audio import NonFiniteAudioError
    rec = StreamingRecognizer(tiny_model, [70, 1])
    st = rec.new_stream("s")
    rec.accept_audio(st, test_audio[0][:8000])
    n = st.n_samples
    bad = np.full(480, np.nan, np.float32)
    with pytest.raises(NonFiniteAudioError):
        rec.accept_audio(st, bad)
    with pytest.raises(ValueError, match="16000 Hz"):
        rec.accept_audio(st, test_audio[0][:480], sample_rate=8000)
    assert st.n_samples == n
    with pytest.raises(ValueError, match="not one the model was trained with"):
        StreamingRecognizer(tiny_model, [70, 7])


def test_load_by_name_offline_fails_fast(monkeypatch):
    from workbench.asr import streaming
    monkeypatch.setattr(streaming, "_hub_reachable", lambda timeout=3.0: False)
    t0 = time.time()
    with pytest.raises(streaming.ModelNotAvailableError, match="cannot be reached"):
        streaming.load_model("nvidia/parakeet-tdt_ctc-110m")
    assert time.time() - t0 < 5
    with pytest.raises(streaming.ModelNotAvailableError, match="no checkpoint"):
        streaming.load_model("/nonexistent/model.nemo")


@pytest.mark.slow
def test_recipe_trains_and_exports(smoke_corpus, tmp_path):
    import json
    from workbench.asr.recipe import SMOKE_OVERRIDES as args, train
    out = train("small", args, out_dir=tmp_path / "model", work_dir=tmp_path / "work")
    metrics = json.loads((out / "metrics.json").read_text())
    assert (out / "model.nemo").is_file() and (out / "config.yaml").is_file()
    assert metrics["steps"] == 2 and 0 <= metrics["greedy_rnnt_wer"]["[70, 1]"]["wer"]
    # a new machine continues from the exported .nemo (weights and tokenizer), not from the lost work folder
    again = train("small", args, out_dir=tmp_path / "model2", work_dir=tmp_path / "work2", init_from=out / "model.nemo")
    assert (tmp_path / "work2" / "tokenizer" / "tokenizer.model").read_bytes() == \
        (tmp_path / "work" / "tokenizer" / "tokenizer.model").read_bytes()
    assert json.loads((again / "metrics.json").read_text())["steps"] == 2


def test_token_density_falls_with_a_larger_vocabulary(smoke_corpus, tmp_path):
    from workbench.asr.recipe import token_density
    from workbench.asr.tokenizer import train_tokenizer
    from workbench.data import open_dataset
    train = open_dataset(smoke_corpus, "train").entries
    texts = [e["text"] for e in train]
    small = token_density(train_tokenizer(texts, tmp_path / "a", 40), train, 0.08)
    large = token_density(train_tokenizer(texts, tmp_path / "b", 128), train, 0.08)
    assert 0 < large["median"] < small["median"] and large["p95"] < small["p95"] <= small["max"]


@pytest.mark.slow
def test_ctc_stage_hands_its_encoder_and_head_to_the_hybrid(smoke_corpus, tmp_path):
    import json
    from workbench.asr.recipe import SMOKE_OVERRIDES as args, train
    from workbench.asr.streaming import load_model
    ctc = train("small_ctc", args, out_dir=tmp_path / "ctc", work_dir=tmp_path / "w1")
    assert "greedy_ctc_wer" in json.loads((ctc / "metrics.json").read_text())
    hybrid = train("small", args + ["trainer.max_steps=1", "model.optim.lr=1e-9"], out_dir=tmp_path / "hyb",
                   work_dir=tmp_path / "w2", init_from=ctc / "model.nemo")
    a, b = load_model(ctc / "model.nemo", "cpu"), load_model(hybrid / "model.nemo", "cpu")
    sa, sb = a.state_dict(), b.state_dict()
    for k, v in sa.items():      # encoder and CTC head carried over (one step at lr 1e-9 barely moves them)
        kb = "ctc_" + k if k.startswith("decoder.") else k
        assert torch.allclose(v.float(), sb[kb].float(), atol=1e-5), k
