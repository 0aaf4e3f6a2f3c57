"""The ESPnet backend behind the workbench's stream interface: partials per chunk, n-best with scores and
word times, state kept per stream (interleaved streams equal streams alone), bad input refused."""
import numpy as np
import pytest

from workbench.events import Final, Partial


@pytest.fixture(scope="session")
def tiny_espnet(smoke_corpus, tmp_path_factory):
    """A randomly initialised contextual-block conformer in espnet2's own file format."""
    import torch
    from workbench.asr.espnet_backend import write_config
    from workbench.asr.tokenizer import train_tokenizer
    from workbench.data import open_dataset
    d = tmp_path_factory.mktemp("tiny_espnet")
    tok = train_tokenizer([e["text"] for e in open_dataset(smoke_corpus, "train").entries], d / "tok", 64)
    torch.manual_seed(0)
    _, model = write_config(d, tok / "tokenizer.model", {"output_size": 64, "attention_heads": 2, "linear_units": 128,
                                                         "num_blocks": 2}, {"linear_units": 128, "num_blocks": 1})
    torch.save(model.state_dict(), d / "model.pth")
    return d / "config.yaml", d / "model.pth"


@pytest.fixture(scope="session")
def esp(tiny_espnet):
    from workbench.asr.espnet_backend import EspnetStreamingRecognizer
    return EspnetStreamingRecognizer(*tiny_espnet, beam_size=3, nbest=3, device="cpu")


def _run(rec, audio, frame):
    st = rec.new_stream("s")
    events = []
    for a in range(0, len(audio), frame):
        events += rec.accept_audio(st, audio[a:a + frame])
    return events + rec.finalize(st)


def test_partials_then_nbest_with_word_times(esp, test_audio):
    audio = test_audio[0][:32000]
    events = _run(esp, audio, 480)
    partials = [e for e in events if isinstance(e, Partial)]
    final = events[-1]
    assert isinstance(final, Final) and partials
    assert all(p.encoder_output.shape[1] == 64 for p in partials)
    assert [p.step for p in partials] == list(range(1, len(partials) + 1))
    scores = [h.score for h in final.nbest]
    assert 1 <= len(final.nbest) <= 3 and scores == sorted(scores, reverse=True)
    for h in final.nbest:
        assert all(0 <= w.start < w.end <= len(audio) / 16000 + 0.2 for w in h.words)
        assert [w.start for w in h.words] == sorted(w.start for w in h.words)


def test_reranker_reorders_the_espnet_final(tiny_espnet, esp, test_audio):
    """The same hook as the NeMo recogniser: the final n-best (distinct token sequences) goes through the
    reranker, whose time is recorded."""
    from dataclasses import replace
    from workbench.asr.espnet_backend import EspnetStreamingRecognizer
    rev = EspnetStreamingRecognizer(*tiny_espnet, beam_size=3, nbest=3, device="cpu",
                                    reranker=lambda f: replace(f, nbest=f.nbest[::-1]))
    audio = test_audio[0][:32000]
    plain, got = _run(esp, audio, 480)[-1], _run(rev, audio, 480)[-1]
    assert len({tuple(h.tokens) for h in plain.nbest}) == len(plain.nbest)
    assert [h.tokens for h in got.nbest] == [h.tokens for h in plain.nbest][::-1] and len(rev.rerank_ms) == 1
    with pytest.raises(ValueError, match="nbest >= 2"):
        EspnetStreamingRecognizer(*tiny_espnet, nbest=1, device="cpu", reranker=lambda f: f)

def test_block_cadence_and_latency(tiny_espnet, test_audio):
    """After the first block, every partial brings ``hop_size`` encoder frames, and the audio they waited for
    is the nominal ``latency_ms`` (look_ahead + half a hop) plus the front end's window: under 150 ms more."""
    from workbench.asr.espnet_backend import EspnetStreamingRecognizer
    esp = EspnetStreamingRecognizer(*tiny_espnet, beam_size=1, nbest=1, device="cpu")   # a random model: keep it cheap
    audio = np.tile(test_audio[0], 3)[:4 * 16000]
    partials = [e for e in _run(esp, audio, 480) if isinstance(e, Partial)]
    steady = partials[1:]
    assert len(steady) >= 3 and all(len(p.encoder_output) == esp.block["hop_size"] for p in steady)
    waits = [p.audio_end - (p.encoder_frames - len(p.encoder_output) + j) * esp.frame_s
             for p in steady for j in range(1, len(p.encoder_output) + 1)]
    assert esp.latency_ms == 1000 * 0.04 * (16 + 8.5)      # 10 ms hop x conv2d's 4x; look_ahead 16, hop 16
    assert esp.latency_ms <= 1000 * np.mean(waits) <= esp.latency_ms + 150


def test_interleaved_streams_equal_streams_alone(esp, test_audio):
    a, b = test_audio[0][:24000], test_audio[1][:24000]
    alone = [_run(esp, x, 480)[-1].nbest[0].tokens for x in (a, b)]
    sa, sb = esp.new_stream("a"), esp.new_stream("b")
    for i in range(0, 24000, 480):
        esp.accept_audio(sa, a[i:i + 480])
        esp.accept_audio(sb, b[i:i + 480])
    assert [esp.finalize(sa)[-1].nbest[0].tokens, esp.finalize(sb)[-1].nbest[0].tokens] == alone


def test_bad_input_and_missing_files(esp, test_audio, tmp_path):
    from workbench.asr.espnet_backend import EspnetStreamingRecognizer
    from workbench.asr.streaming import ModelNotAvailableError
    from workbench.audio import NonFiniteAudioError
    st = esp.new_stream("x")
    esp.accept_audio(st, test_audio[0][:8000])
    n = st.n_samples
    with pytest.raises(NonFiniteAudioError):
        esp.accept_audio(st, np.full(480, np.nan, np.float32))
    with pytest.raises(ValueError, match="16000 Hz"):
        esp.accept_audio(st, test_audio[0][:480], sample_rate=8000)
    assert st.n_samples == n
    esp.finalize(st)
    with pytest.raises(RuntimeError, match="finalised"):
        esp.accept_audio(st, test_audio[0][:480])
    with pytest.raises(ModelNotAvailableError, match="no ESPnet checkpoint"):
        EspnetStreamingRecognizer(tmp_path / "config.yaml", tmp_path / "model.pth")


def test_load_packed_archive_and_hub_layout(tiny_espnet, esp, test_audio, tmp_path, monkeypatch):
    """By-name loading on local files in ESPnet's own formats: an archive packed by espnet2's ``pack`` (the
    espnet_model_zoo format) and a folder with ``meta.yaml`` and the token list under ``data/`` (the layout of
    ESPnet models on the Hugging Face hub). Both decode exactly as the model loaded from its files."""
    import shutil
    import yaml
    from espnet2.main_funcs.pack_funcs import pack
    from workbench.asr.espnet_backend import EspnetStreamingRecognizer
    config, weights = tiny_espnet
    ref = _run(esp, test_audio[0][:24000], 480)[-1].nbest[0].tokens

    hub = tmp_path / "hub"       # exp/<run>/config.yaml naming data/... relative to the root, as recipes pack it
    (hub / "exp" / "asr_run").mkdir(parents=True)
    (hub / "data").mkdir()
    cfg = yaml.safe_load(config.read_text())
    shutil.copy(cfg["bpemodel"], hub / "data" / "bpe.model")
    cfg["bpemodel"] = "data/bpe.model"
    (hub / "exp" / "asr_run" / "config.yaml").write_text(yaml.safe_dump(cfg))
    shutil.copy(weights, hub / "exp" / "asr_run" / "valid.acc.ave.pth")
    monkeypatch.chdir(hub)       # pack stores paths relative to the working directory
    pack(files={"asr_model_file": "exp/asr_run/valid.acc.ave.pth"},
         yaml_files={"asr_train_config": "exp/asr_run/config.yaml"}, outpath=tmp_path / "asr_run.zip",
         option=["data/bpe.model"])
    import zipfile
    with zipfile.ZipFile(tmp_path / "asr_run.zip") as z:     # the hub layout: the archive's meta.yaml at the root
        (hub / "meta.yaml").write_bytes(z.read("meta.yaml"))
    monkeypatch.chdir(tmp_path / "hub" / "exp")             # loading does not depend on the working directory
    for source in (tmp_path / "asr_run.zip", hub):
        rec = EspnetStreamingRecognizer.from_pretrained(source, cache_dir=tmp_path / "unpacked", beam_size=3,
                                                        nbest=3, device="cpu")
        assert _run(rec, test_audio[0][:24000], 480)[-1].nbest[0].tokens == ref, source


def test_load_by_tag_offline_fails_fast(tmp_path, monkeypatch):
    import time
    from workbench.asr.espnet_backend import EspnetStreamingRecognizer
    from workbench.asr.streaming import ModelNotAvailableError
    from workbench import hub
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError, match="Hugging Face hub"):
        EspnetStreamingRecognizer.from_pretrained("pyf98/librispeech_conformer_hop_length160")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    asked = []
    monkeypatch.setattr(hub, "reachable", lambda url, timeout=5.0: asked.append((url, timeout)) or False)
    t0 = time.time()
    with pytest.raises(ModelNotAvailableError, match="cannot be reached"):
        EspnetStreamingRecognizer.from_pretrained("pyf98/librispeech_conformer_hop_length160")
    assert asked == [("https://huggingface.co/api/models/pyf98/librispeech_conformer_hop_length160", 3.0)]
    assert time.time() - t0 < 5
    with pytest.raises(ModelNotAvailableError, match="no ESPnet model at"):
        EspnetStreamingRecognizer.from_pretrained(tmp_path / "missing.zip")
    with pytest.raises(ModelNotAvailableError, match="no ESPnet model at"):    # a mistyped relative folder
        EspnetStreamingRecognizer.from_pretrained("data/models/asr_espnet_smal")
    assert asked == [asked[0]]                                                 # ... is not looked up as a tag
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotAvailableError, match="neither config.yaml"):
        EspnetStreamingRecognizer.from_pretrained(tmp_path / "empty")


@pytest.mark.slow
def test_espnet_recipe_trains_and_ships(smoke_corpus, tmp_path, monkeypatch):
    import json
    from workbench.asr.espnet_backend import EspnetStreamingRecognizer, train_espnet
    out = train_espnet("smoke", out_dir=tmp_path / "out", work_dir=tmp_path / "work", max_epoch=1, batch_size=4,
                       vocab_size=64, encoder_conf={"output_size": 64, "attention_heads": 2, "linear_units": 128,
                                                    "num_blocks": 2},
                       decoder_conf={"linear_units": 128, "num_blocks": 1}, n_eval=2)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_test"] == 2 and metrics["streaming_beam4_wer"]["wer"] >= 0
    assert {p.name for p in out.iterdir()} >= {"config.yaml", "model.pth", "bpe.model", "feats_stats.npz"}
    monkeypatch.chdir(tmp_path)           # the shipped folder is self-contained (relative paths)
    rec = EspnetStreamingRecognizer(out / "config.yaml", out / "model.pth", device="cpu")
    st = rec.new_stream("s")
    rec.accept_audio(st, np.zeros(16000, np.float32))
    assert isinstance(rec.finalize(st)[-1], Final)

    # stage 2 (as make models): starts from stage 1's weights in its own experiment folder. With a learning
    # rate of ~0 its one step leaves them as they were, so the export equals stage 1 when init works (the
    # conformer's batch-norm statistics still move with the batch: those are left out).
    import torch
    small = dict(max_epoch=1, iters_per_epoch=1, batch_size=4, vocab_size=64, n_eval=1,
                 encoder_conf={"output_size": 64, "attention_heads": 2, "linear_units": 128, "num_blocks": 2},
                 decoder_conf={"linear_units": 128, "num_blocks": 1})
    with pytest.raises(FileNotFoundError, match="init-from"):
        train_espnet("smoke", out_dir=tmp_path / "s2", work_dir=tmp_path / "work", exp_name="exp_s2",
                     init_from=tmp_path / "missing.pth", **small)
    assert not (tmp_path / "s2").exists()
    s2 = train_espnet("smoke", out_dir=tmp_path / "s2", work_dir=tmp_path / "work", exp_name="exp_s2",
                      init_from=out / "model.pth", ctc_weight=0.7, lr=1e-12, **small)
    a, b = torch.load(out / "model.pth"), torch.load(s2 / "model.pth")
    weights = [k for k in a if "running_" not in k and "num_batches" not in k]
    assert a.keys() == b.keys() and len(weights) > 50
    assert [k for k in weights if not torch.allclose(a[k], b[k], atol=1e-6)] == []
    m2 = json.loads((s2 / "metrics.json").read_text())
    assert m2["ctc_weight"] == 0.7 and m2["init_from"] == str(out / "model.pth")
    assert (tmp_path / "work" / "exp_s2" / "config.yaml").is_file()

    # stage 3 (as make models): a kept tokenizer instead of a new one, so a model trained on another corpus
    # loads whole; the recipe must not train a tokenizer then, and a wrong or missing file is refused first
    import workbench.asr.tokenizer as tokmod
    def no_training(*a, **k):
        raise AssertionError("train_tokenizer called although --tokenizer-from was given")
    monkeypatch.setattr(tokmod, "train_tokenizer", no_training)
    with pytest.raises(FileNotFoundError, match="tokenizer-from"):
        train_espnet("smoke", out_dir=tmp_path / "s3", work_dir=tmp_path / "work", exp_name="exp_s3",
                     init_from=s2 / "model.pth", tokenizer_from=tmp_path / "missing.model", **small)
    with pytest.raises(ValueError, match="pieces"):
        train_espnet("smoke", out_dir=tmp_path / "s3", work_dir=tmp_path / "work", exp_name="exp_s3",
                     init_from=s2 / "model.pth", tokenizer_from=s2 / "bpe.model", **{**small, "vocab_size": 128})
    assert not (tmp_path / "s3").exists()
    s3 = train_espnet("smoke", out_dir=tmp_path / "s3", work_dir=tmp_path / "work", exp_name="exp_s3",
                      init_from=s2 / "model.pth", tokenizer_from=s2 / "bpe.model", lr=1e-12, **small)
    assert (s3 / "bpe.model").read_bytes() == (s2 / "bpe.model").read_bytes()
    c = torch.load(s3 / "model.pth")
    assert [k for k in weights if not torch.allclose(b[k], c[k], atol=1e-6)] == []
    assert json.loads((s3 / "metrics.json").read_text())["tokenizer_from"] == str(s2 / "bpe.model")


def test_loops_are_cut_and_no_final_outruns_its_audio(esp, test_audio):
    from workbench.asr.espnet_backend import guard_repetitions
    assert guard_repetitions([5, 7, 7, 7, 7, 7, 9]) == [5, 7, 7, 9]
    assert guard_repetitions([1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 4]) == [1, 2, 3, 1, 2, 3, 4]
    assert guard_repetitions([4, 4, 6, 6, 8]) == [4, 4, 6, 6, 8]        # twice is speech, not a loop
    # an untrained model (random weights) writes whatever it likes: the final stays within its audio's budget
    audio = test_audio[0]
    final = _run(esp, audio, 4800)[-1]
    for h in final.nbest:
        assert len(h.tokens) <= max(1, int(esp.max_tokens_per_s * len(audio) / 16000))
        assert guard_repetitions(h.tokens) == h.tokens
