"""Streaming ASR on NeMo: streaming equals offline at every lookahead, batched equals alone, loading, recipe."""
import time

import numpy as np
import pytest
from conftest import patience
import torch

from workbench.events import Final, Partial

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
    rec = StreamingRecognizer(tiny_model, ctx)
    tiny_model.encoder.set_default_att_context_size(list(ctx))   # the offline pass's attention mask
    # both parities of the feature-frame count: the causal subsampling's right padding differs between them
    for audio in (test_audio[0], test_audio[0][:-160], test_audio[1]):
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


@pytest.fixture
def silent_hub(monkeypatch):
    """A hub endpoint that accepts connections and never answers: the worst offline case (a proxy or
    firewall that swallows packets), with the real check and its real timeout."""
    import socket
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{srv.getsockname()[1]}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield
    srv.close()


def test_load_by_name_offline_fails_fast(silent_hub):
    from workbench.asr import streaming
    t0 = time.time()
    with pytest.raises(streaming.ModelNotAvailableError, match="cannot be reached"):
        streaming.load_model("nvidia/parakeet-tdt_ctc-110m")
    assert time.time() - t0 < 10       # the hub check's own 3 s timeout, not a hang on the silent server
    with pytest.raises(streaming.ModelNotAvailableError, match="no checkpoint"):
        streaming.load_model("/nonexistent/model.nemo")


def test_recognizers_share_a_model_without_changing_it(tiny_model, test_audio):
    """Creating recognisers and stepping them at other contexts leaves the model's own decoding and
    attention context as they were, and a recogniser's results do not depend on what another did."""
    from workbench.asr.streaming import StreamingRecognizer, transcribe_streaming
    tiny_model.encoder.set_default_att_context_size([70, 4])
    decoding = tiny_model.decoding
    a = StreamingRecognizer(tiny_model, [70, 0])
    ref = transcribe_streaming(a, test_audio[0])
    b = StreamingRecognizer(tiny_model, [70, 13])
    st_a, st_b = a.new_stream("a"), b.new_stream("b")
    step = 480
    events = []
    for i in range(0, len(test_audio[0]), step):       # interleaved: b steps between a's steps
        events += a.accept_audio(st_a, test_audio[0][i:i + step])
        b.accept_audio(st_b, test_audio[1][i:i + step])
    events += a.finalize(st_a)
    assert events[-1].nbest[0].tokens == ref[-1].nbest[0].tokens
    assert tiny_model.decoding is decoding
    assert list(tiny_model.encoder.att_context_size) == [70, 4]


def test_both_backends_implement_the_public_interface(tiny_model):
    from workbench.asr.espnet_backend import EspnetStreamingRecognizer
    from workbench.asr.protocol import BatchRecognizer, Recognizer
    from workbench.asr.streaming import StreamingRecognizer
    rec = StreamingRecognizer(tiny_model, [70, 1])
    assert isinstance(rec, BatchRecognizer) and isinstance(rec, Recognizer)
    for name in ("new_stream", "accept_audio", "finalize"):
        assert callable(getattr(EspnetStreamingRecognizer, name))
    assert not hasattr(EspnetStreamingRecognizer, "step_batch")     # it runs streams one after another



def test_the_recogniser_answers_what_other_rooms_ask_of_its_model(tiny_model):
    """Rooms read the vocabulary, tokenizer and trained lookaheads through the recogniser (no NeMo internals)."""
    from workbench.asr.streaming import StreamingRecognizer, trained_contexts
    rec = StreamingRecognizer(tiny_model, [70, 1])
    assert rec.vocab_size == tiny_model.tokenizer.vocab_size > 0
    assert rec.tokenizer.ids_to_text(rec.tokenizer.text_to_ids("set a timer")) == "set a timer"
    assert trained_contexts(tiny_model) == [list(c) for c in rec.contexts]
    assert [70, 1] in trained_contexts(tiny_model)


def test_import_workbench_lets_plain_nemo_open_the_shipped_model():
    """A fresh interpreter: ``import workbench`` (nothing else of ours), then NeMo's own restore_from."""
    import subprocess
    import sys
    from pathlib import Path
    shipped = Path(__file__).resolve().parents[1] / "data" / "models" / "asr_small" / "model.nemo"
    code = ("import sys, workbench\n"
            "from nemo.collections.asr.models import ASRModel\n"
            "assert 'workbench.asr.features' not in sys.modules\n"
            f"m = ASRModel.restore_from({str(shipped)!r}, map_location='cpu')\n"
            "print(type(m.preprocessor).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=patience(300))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith(("GlobalMVNMelSpectrogram", "AudioToMelSpectrogramPreprocessor"))


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


def test_beam_nbest_over_the_streamed_encoder_output_equals_offline_beam(tiny_model, test_audio):
    """nbest > 1: the Final carries NeMo's RNNT beam n-best over the frames the stream encoded, which are the
    offline pass's frames, so the list equals the offline beam's; distinct hypotheses, best score first."""
    from workbench.asr.streaming import StreamingRecognizer, transcribe_streaming
    ctx = [70, 13]
    rec = StreamingRecognizer(tiny_model, ctx, nbest=4)
    tiny_model.encoder.set_default_att_context_size(ctx)
    audio = test_audio[0]
    final = transcribe_streaming(rec, audio)[-1]
    nb = final.nbest
    assert 1 <= len(nb) <= 4
    assert [h.score for h in nb] == sorted((h.score for h in nb), reverse=True)
    assert len({tuple(h.tokens) for h in nb}) == len(nb)
    with torch.inference_mode():
        x = torch.from_numpy(audio).unsqueeze(0)
        f, fl = tiny_model.preprocessor(input_signal=x, length=torch.tensor([len(audio)]))
        enc, el = tiny_model.encoder(audio_signal=f, length=fl)
        off = rec.beam_decoding.rnnt_decoder_predictions_tensor(encoder_output=enc, encoded_lengths=el,
                                                                return_hypotheses=True)[0]
    best_off = max(off, key=lambda h: float(h.score))
    assert nb[0].tokens == [int(t) for t in best_off.y_sequence]
    assert nb[0].score == pytest.approx(float(best_off.score), abs=1e-3)
    with pytest.raises(ValueError, match="nbest must be >= 1"):
        StreamingRecognizer(tiny_model, ctx, nbest=0)


def test_batched_beam_equals_each_streams_own_beam(shipped_model, test_audio):
    """``transcribe_batch`` runs one padded beam search over many finished streams: each list must equal the
    one that stream's own beam gives (padding and batching change nothing). The shipped model, not the tiny
    random one: a random model's hypotheses tie to within float rounding, so any two summation orders differ."""
    from workbench.asr.streaming import StreamingRecognizer, transcribe_batch, transcribe_streaming
    rec = StreamingRecognizer(shipped_model, [70, 13], nbest=8)
    audios = [test_audio[0], test_audio[1][: len(test_audio[1]) // 2], test_audio[1]]
    batched = [ev[-1] for ev in transcribe_batch(rec, audios)]
    alone = [transcribe_streaming(rec, a)[-1] for a in audios]
    for b, a in zip(batched, alone):
        assert [h.tokens for h in b.nbest] == [h.tokens for h in a.nbest]
        assert [h.score for h in b.nbest] == pytest.approx([h.score for h in a.nbest], abs=1e-3)
        assert b.nbest[0].words == a.nbest[0].words


def test_ranks_preparing_the_same_tokenizer_at_once_agree_and_nothing_is_retrained(smoke_corpus, tmp_path):
    """DDP ranks started together (Slurm, torchrun) all run the recipe's preparation: the tokenizer is trained in
    a private folder and moved into place whole, so concurrent trainers end with one tokenizer, and a rerun on
    the same texts keeps it."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from workbench.asr.tokenizer import train_tokenizer
    from workbench.data import open_dataset
    texts = [e["text"] for e in open_dataset(smoke_corpus, "train").entries]
    out = tmp_path / "tok"
    with ProcessPoolExecutor(3, mp_context=mp.get_context("spawn")) as pool:
        done = list(pool.map(train_tokenizer, [texts] * 3, [out] * 3, [64] * 3))
    assert all(d == out for d in done)
    assert sorted(p.name for p in out.iterdir()) == ["source.json", "tokenizer.model", "vocab.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name != "tok"], "a private folder was left behind"
    stamp = (out / "tokenizer.model").stat().st_mtime_ns
    train_tokenizer(texts, out, 64)
    assert (out / "tokenizer.model").stat().st_mtime_ns == stamp          # same texts and size: kept
    train_tokenizer(texts, out, 48)
    import sentencepiece as spm
    assert spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model")).get_piece_size() == 48


@pytest.mark.slow
def test_training_compounds_resume_and_ledger(smoke_corpus, tmp_path):
    """A recorded run resumed goes on as a new run on top of it (its compute not charged twice, the data
    order moved on by its steps); a run from an export is that export's child; every run is in the ledger."""
    import json
    from workbench.asr import ledger as L
    from workbench.asr.recipe import SMOKE_OVERRIDES as args, train
    led = tmp_path / "ledger.json"
    first = train("small", args, out_dir=tmp_path / "m1", work_dir=tmp_path / "w", ledger=led, note="first")
    again = train("small", args + ["trainer.max_steps=4"], out_dir=tmp_path / "m2", work_dir=tmp_path / "w",
                  ledger=led, resume=True)
    child = train("small", args, out_dir=tmp_path / "m3", work_dir=tmp_path / "w3", ledger=led,
                  init_from=again / "model.nemo")
    runs = L.read(led)["runs"]
    assert [(r["id"], r["parent"], r["steps"]) for r in runs] == [("r001", None, 2), ("r002", "r001", 2),
                                                                    ("r003", "r002", 2)]
    assert runs[0]["changed"] == "first" and "resumed" in runs[1]["changed"]
    assert [r["cumulative_steps"] for r in runs] == [2, 4, 6]
    assert all(r["cpu_hours"] > 0 for r in runs)
    assert runs[1]["cumulative_cpu_hours"] == pytest.approx(runs[0]["cpu_hours"] + runs[1]["cpu_hours"], abs=2e-3)
    assert runs[2]["model_sha1"] == L.sha1_of(child / "model.nemo") and not runs[2]["shipped"]
    assert {"dev", "dev clean", "asterisk adapt_dev"} <= set(runs[0]["dev_wer"])
    assert json.loads((tmp_path / "w" / "run.json").read_text())["charged"]["step"] == 4
    assert (first / "model.nemo").is_file()


def test_teacher_windows_place_each_utterance_on_the_teacher_hop():
    from workbench.asr.distill import HOP, WINDOW, pack
    placed = pack([16000 * 5, 16000 * 12, 16000 * 14, 16000 * 40, 100], max_windows=2)
    assert [(i, w) for i, w, _ in placed] == [(0, 0), (1, 0), (2, 1), (4, 1)]   # 40 s: no teacher; 2 windows at most
    assert all(off % HOP == 0 for _, _, off in placed)
    for (i, w, off), (j, w2, off2) in zip(placed, placed[1:]):
        if w == w2:
            assert off2 >= off + [16000 * 5, 16000 * 12, 16000 * 14, 16000 * 40, 100][i]   # no overlap
    assert all(off + n <= WINDOW for (i, _, off), n in ((p, [16000 * 5, 16000 * 12, 16000 * 14, 16000 * 40, 100][p[0]])
                                                        for p in placed))


@pytest.mark.slow
def test_whisper_distillation_trains_the_head_and_leaves_a_plain_model(smoke_corpus, tmp_path):
    """The teacher's loss is added to NeMo's own and logged by it, and the export has no trace of the teacher."""
    import json
    from workbench.asr.recipe import SMOKE_OVERRIDES as args, train
    from workbench.asr.streaming import load_model
    out = train("small", args + ["distill.teacher=base", "distill.weight=1.0", "distill.max_windows=1", "trainer.max_steps=3",
                                 "trainer.log_every_n_steps=1"],
                out_dir=tmp_path / "m", work_dir=tmp_path / "w")
    model = load_model(out / "model.nemo", "cpu")
    assert not any(k.startswith("distill_head") for k in model.state_dict())
    logs = (tmp_path / "w" / "logs").rglob("metrics.csv")
    header = next(iter(logs)).read_text().splitlines()[0]
    assert "adapter_loss/distill_head" in header          # NeMo added and logged the teacher's loss
    assert json.loads((out / "metrics.json").read_text())["steps"] == 3


def test_hiding_the_end_keeps_the_loss_frames_and_shows_the_last_ones_a_continuation(tiny_nemo):
    """Training with the end hidden: the losses get the frames of the original lengths; frames far from the end
    are computed as before, the last ones (which saw the end of the input) now see its background go on; in
    eval mode, and after ``del model.forward``, the model is the plain one."""
    from workbench.asr.recipe import hide_the_end
    from workbench.asr.streaming import load_model
    model = load_model(tiny_nemo, device="cpu")
    model.spec_augmentation = None
    torch.manual_seed(1)
    sig, lens = torch.randn(2, 48000) * 0.1, torch.tensor([48000, 30000])
    sig[1, 30000:] = 0
    with torch.no_grad():
        plain, plain_len = model.forward(input_signal=sig, input_signal_length=lens)
        hide_the_end(model, 0.64, 1280)
        again, again_len = model.forward(input_signal=sig, input_signal_length=lens)      # eval: plain
        assert torch.equal(again_len, plain_len) and torch.allclose(again, plain)
        model.train()                           # the wrapper reads the model's own flag; every part of it
        for m in model.children():              # computes as in eval (no dropout, no batch statistics, no
            m.eval()                            # dither): the same weights, computed the same way
        hidden, hidden_len = model.forward(input_signal=sig, input_signal_length=lens)
    assert torch.equal(hidden_len, plain_len) and hidden.shape == plain.shape
    n1 = int(plain_len[1])
    assert torch.allclose(hidden[0, :, :20], plain[0, :, :20], atol=1e-4)
    assert not torch.allclose(hidden[0, :, -1], plain[0, :, -1], atol=1e-4)
    assert not torch.allclose(hidden[1, :, n1 - 1], plain[1, :, n1 - 1], atol=1e-4)
    del model.forward
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model.forward(input_signal=sig, input_signal_length=lens)[0], plain)
    with pytest.raises(ValueError, match="hidden_end_s"):
        hide_the_end(model, 0.01, 1280)
