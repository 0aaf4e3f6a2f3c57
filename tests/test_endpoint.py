"""End-pointing: metrics on hand-made cases, each end-pointer on hand-made signals, live == offline, the
arbitrator recipe and the benchmark on the tiny model."""
import json

import numpy as np
import pytest

from workbench.endpoint import (EouEndpointer, Outcome, PauseEndpointer, Signals, TwoPassEndpointer,
                                compare_at_ep90, cutoff_at_ep90, summarize)
from workbench.endpoint.metrics import best_at_ep90, pareto_front

HOP = 0.032
WORDS = (("set", 0.1, 0.4), ("a", 0.4, 0.5), ("timer", 0.5, 1.0))


def test_an_endpoint_before_the_true_end_is_a_cut_off():
    early = Outcome(true_end=1.0, endpoint=0.45, audio_end=2.0, words=WORDS)
    assert early.cut_off and early.kept_words() == ["set"]
    on_time = Outcome(true_end=1.0, endpoint=1.0, audio_end=2.0, words=WORDS)
    assert not on_time.cut_off and on_time.latency == 0.0
    never = Outcome(true_end=1.0, endpoint=None, audio_end=2.0, words=WORDS)
    assert not never.cut_off and never.latency == pytest.approx(1.0)


def test_summary_ep50_ep90_cutoff_rate_and_words_lost():
    outs = [Outcome(1.0, 0.45, 2.0, WORDS),       # cut off: "a timer" lost
            Outcome(1.0, 1.3, 2.0, WORDS),        # 300 ms
            Outcome(1.0, None, 2.0, WORDS)]       # never fired: 1000 ms, the end of the audio
    m = summarize(outs)
    assert m["cutoff_rate"] == pytest.approx(1 / 3) and m["n_cut_off"] == 1 and m["n_never_fired"] == 1
    assert m["EP50_ms"] == pytest.approx(650.0) and m["EP90_ms"] == pytest.approx(930.0)
    assert m["wer_cost"] == pytest.approx(2 / 9)    # 2 of 9 reference words deleted
    with pytest.raises(ValueError):
        summarize([])


def test_one_pareto_front_for_table_plot_and_comparison():
    """For each EP90, the lowest cut-off rate any setting reaches at that EP90 or less: a zig-zag of settings
    gives a staircase, read without interpolation; no setting that fast -> NaN."""
    rows = [(200.0, 0.20, "a"), (400.0, 0.25, "b"), (500.0, 0.10, "c"), (600.0, 0.06, "d"), (600.0, 0.04, "e"),
            (800.0, 0.05, "f"), (float("nan"), 0.0, "never")]
    curve = [{"EP90_ms": x, "cutoff_rate": y, "setting": k} for x, y, k in rows]
    assert [r["setting"] for r in pareto_front(curve)] == ["a", "c", "e"]     # b and f are dominated, d is tied worse
    assert cutoff_at_ep90(curve, 450.0) == pytest.approx(0.20)       # b is slower and worse than a: still a
    assert cutoff_at_ep90(curve, 599.0) == pytest.approx(0.10)
    assert cutoff_at_ep90(curve, 10_000.0) == pytest.approx(0.04)    # f is never chosen: e is faster and better
    assert np.isnan(cutoff_at_ep90(curve, 100.0))
    assert best_at_ep90(curve, 700.0)["setting"] == "e"
    other = [{"EP90_ms": 300.0, "cutoff_rate": 0.05, "setting": 1}, {"EP90_ms": 900.0, "cutoff_rate": 0.01, "setting": 2}]
    m = compare_at_ep90({"a": curve, "b": other})
    assert m["EP90_ms"] == 300.0 and m["cutoff_rate"] == {"a": pytest.approx(0.20), "b": pytest.approx(0.05)}
    assert m["setting"] == {"a": "a", "b": 1}


def test_settings_are_chosen_on_dev_and_reported_on_test():
    """The two-pass setting is the one dev's front gives within the pause baseline's dev EP90; on test it is
    scored once, whatever test's own best setting would have been."""
    from workbench.endpoint.evaluation import select_and_report

    def utt(pause_s, true_end=1.0):
        # speech until 0.5 s, a pause of pause_s, speech until true_end, then silence to 3 s
        n = int(3.0 / HOP)
        vad = np.zeros(n, np.float32)
        vad[int(0.1 / HOP):int(0.5 / HOP)] = 1
        vad[int((0.5 + pause_s) / HOP):int(true_end / HOP)] = 1
        return sig(vad, true_end=true_end)
    dev = [utt(0.35, 1.2), utt(0.05), utt(0.05), utt(0.05)]
    test = [utt(0.45, 1.3), utt(0.05), utt(0.05), utt(0.05)]
    rep = select_and_report(dev, test, arbitrator=None)
    assert rep["dev"]["selected"]["pause"] == 500
    assert set(rep["test"]["rows"]) == {"pause"}            # no arbitrator, no EOU probabilities here
    row = rep["test"]["rows"]["pause"]
    assert row["n"] == 4 and row["cutoff_rate"] == 0.0      # the 450 ms pause is not cut at 500 ms
    lo, hi = row["ci"]["cutoff_rate"]["ci95"]
    assert lo == 0.0 and 0.3 < hi < 0.7                     # Wilson interval for 0 of 4


def sig(vad, **kw):
    return Signals("u", "set a timer", true_end=kw.pop("true_end", 1.0), audio_end=len(vad) * HOP, words=WORDS,
                   vad_prob=np.asarray(vad, np.float32), vad_hop=HOP, **kw)


def test_pause_endpointer_counts_silence_after_speech_only():
    # 5 windows of leading silence, speech, a 4-window pause, speech, then silence
    vad = [0] * 5 + [1] * 10 + [0] * 4 + [1] * 6 + [0] * 30
    s = sig(vad)
    assert PauseEndpointer(100).endpoint(s) == pytest.approx((15 + 4) * HOP)   # the mid pause is long enough
    assert PauseEndpointer(200).endpoint(s) == pytest.approx((25 + 7) * HOP)   # 7 windows >= 200 ms
    assert PauseEndpointer(2000).endpoint(s) is None
    with pytest.raises(ValueError):
        PauseEndpointer(0)


def test_eou_endpointer_fires_when_its_step_has_run():
    s = sig([0] * 40, step_time=np.array([0.24, 0.40, 0.56]), step_frames=np.array([2, 4, 6]),
            eou_prob=np.array([0.0, 0.1, 0.2, 0.6, 0.9, 0.95], np.float32))
    assert EouEndpointer(0.5).endpoint(s) == pytest.approx(0.40)   # frame 3 came with the second step
    assert EouEndpointer(0.92).endpoint(s) == pytest.approx(0.56)
    assert EouEndpointer(0.99).endpoint(s) is None
    with pytest.raises(ValueError):
        EouEndpointer(0.0)


def test_two_pass_defers_withdraws_accepts_and_waits_at_most_max_wait():
    vad = [1] * 10 + [0] * 8 + [1] * 5 + [0] * 60
    steps = np.arange(1, 40) * 0.08
    s = sig(vad, step_time=steps, step_frames=np.arange(1, 40))
    first = PauseEndpointer(100)                          # proposes after 4 silent windows
    # arbitrator: unsure in the mid-sentence pause, sure after the final pause has lasted 300 ms
    p = np.where(steps >= (23 + 10) * HOP, 0.9, 0.1)
    tp = TwoPassEndpointer(first, lambda _: p, threshold=0.5, max_wait_ms=5000)
    t = tp.endpoint(s)
    # deferred in the mid pause; accepted in the final one at the first window after the arbitrator's
    # first confident step (1.12 s)
    assert t == pytest.approx(35 * HOP)
    forced = TwoPassEndpointer(first, lambda _: np.zeros(len(steps)), threshold=0.5, max_wait_ms=320)
    assert forced.endpoint(s) == pytest.approx((23 + 4 + 10) * HOP), "max wait counts from the final proposal"
    assert PauseEndpointer(100).endpoint(s) == pytest.approx(14 * HOP), "the baseline cuts off in the mid pause"


@pytest.fixture(scope="module")
def rec(tiny_model):
    from workbench.asr.streaming import StreamingRecognizer
    return StreamingRecognizer(tiny_model, [70, 1])


def test_live_endpointer_equals_offline(rec, smoke_corpus):
    from workbench.data import open_dataset
    from workbench.endpoint import StreamingEndpointer, compute_signals
    ds = open_dataset(smoke_corpus, "test")
    # a recording without background noise (in babble the VAD may never hear a pause) and room after speech
    i = next(k for k, e in enumerate(ds.entries) if not e["noise"] and e["duration"] - e["speech_end"] > 0.5)
    audio = ds.audio(i)
    off = compute_signals(rec, [ds.entries[i]], [audio])[0]
    # the stream's final result is kept beside the partials (look-to-talk reads it): its tokens spell its words
    assert off.final_text and rec.model.tokenizer.ids_to_text(off.final_tokens).strip() == off.final_text.strip()
    for ep in (PauseEndpointer(300), EouEndpointer(float(np.quantile(off.eou_prob, 0.5)))):
        want = ep.endpoint(off)
        live = StreamingEndpointer(ep, rec)
        got = None
        for a in range(0, len(audio), 480):
            got = live.push(audio[a:a + 480])
            if got is not None:
                break
        assert want is not None and got == pytest.approx(want), ep.name


def test_arbitrator_recipe_trains_saves_and_reloads(rec, smoke_corpus, tmp_path):
    import torch
    from workbench.data import open_dataset
    from workbench.endpoint import compute_signals
    from workbench.endpoint.arbitrator import ArbitratorProbs, load, save, train_arbitrator
    sigs = {}
    for split in ("train", "dev"):
        ds = open_dataset(smoke_corpus, split)
        sigs[split] = compute_signals(rec, ds.entries, [ds.audio(k) for k in range(len(ds))])
    vocab = int(rec.model.tokenizer.vocab_size)
    model, metrics = train_arbitrator(sigs["train"], sigs["dev"], vocab, epochs=3, log=lambda *_: None)
    assert metrics["train_examples"] > 0
    # the model returned is the epoch whose dev balanced accuracy was reported: recompute it from the model
    from workbench.endpoint.arbitrator import dataset
    (Df, Dl, Db), dy, _ = dataset(sigs["dev"], model.k, model.n_last, vocab, 1)
    model.eval()
    with torch.no_grad():
        pr = torch.sigmoid(model(Df, Dl, Db))
    bal = 0.5 * (float((pr[dy == 1] >= 0.5).float().mean()) + float((pr[dy == 0] < 0.5).float().mean()))
    assert bal == pytest.approx(metrics["dev_balanced_accuracy"], abs=1e-3)
    save(model, tmp_path / "arb", metrics, {"asr_model": "tiny"})
    again = load(tmp_path / "arb")
    s = sigs["dev"][0]
    p = ArbitratorProbs(model)(s)
    assert p.shape == s.step_time.shape and ((p >= 0) & (p <= 1)).all()
    np.testing.assert_allclose(ArbitratorProbs(again)(s), p, atol=1e-6)
    assert json.loads((tmp_path / "arb" / "metrics.json").read_text())["asr_model"] == "tiny"
    with pytest.raises(FileNotFoundError, match="train-arbitrator"):
        load(tmp_path / "nowhere")


def test_bench_endpoint_cli(tiny_nemo, smoke_corpus, tmp_path, capsys):
    from workbench.__main__ import main
    assert main(["train-arbitrator", "--model", str(tiny_nemo), "--corpus-size", "smoke", "--n-train", "24",
                 "--n-dev", "8", "--epochs", "2", "--out", str(tmp_path / "arb")]) == 0
    capsys.readouterr()
    assert main(["bench", "endpoint", "--model", str(tiny_nemo), "--arbitrator", str(tmp_path / "arb"),
                 "--corpus-size", "smoke", "--n", "8", "--n-dev", "8", "--out", str(tmp_path),
                 "--results", str(tmp_path / "results")]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((tmp_path / "bench_endpoint.json").read_text())
    assert saved["select_split"] == "dev" and saved["n_utterances"] == 8 and saved["n_dev_utterances"] == 8
    rep = saved["all"]
    assert set(rep["dev"]["curves"]) >= {"pause", "two-pass"} and set(rep["test"]["curves"]) >= {"pause", "two-pass"}
    assert printed["all"]["selected_on_dev"] == rep["dev"]["selected"]
    for name, r in rep["test"]["rows"].items():     # every setting reported on test was chosen on dev
        assert r["setting"] == rep["dev"]["selected"][name] or (r["setting"] is None and rep["dev"]["selected"][name] is None)
    assert (tmp_path / "results" / "bench_endpoint.json").is_file()
    assert (tmp_path / "endpoint_tradeoff.png").stat().st_size > 10_000
    by = saved["by_noise"]                         # per background, the counts add up to the split
    for name, kinds in by.items():
        assert sum(v["n"] for v in kinds.values()) == 8
        assert all(0 <= v["fired"]["value"] <= 1 for v in kinds.values())


def test_recordings_continue_after_speech_with_their_own_background():
    from workbench.audio import extend_after_speech
    sr = 16000
    rng = np.random.default_rng(0)
    speech, noise = rng.normal(0, 0.3, sr), rng.normal(0, 0.01, sr // 2)
    a = np.concatenate([speech, noise]).astype(np.float32)
    out = extend_after_speech(a, 1.0, seconds=2.0)
    assert len(out) == 3 * sr and np.array_equal(out[:len(a)], a)
    assert abs(out[len(a):].std() - 0.01) < 0.002, "the background goes on, not the speech"
    assert extend_after_speech(out, 1.0, 2.0) is out
