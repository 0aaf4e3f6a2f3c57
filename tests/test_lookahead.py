"""Dynamic lookahead: the cascade's extremes are the fixed contexts, decisions cover every frame once,
live streaming equals the batched replay, and latency accounting matches the definition."""
import numpy as np
import pytest

from workbench.events import Final, Partial


def _tokens(events):
    return [e for e in events if isinstance(e, Final)][-1].nbest[0].tokens


def test_cascade_extremes_are_the_fixed_contexts(tiny_model, test_audio):
    from workbench.asr.lookahead import CascadePolicy, DynamicLookaheadRecognizer
    from workbench.asr.streaming import StreamingRecognizer, transcribe_streaming
    ladder = ((70, 0), (70, 13))
    for thr, ctx in [(1.0, (70, 0)), (-1.0, (70, 13))]:       # never wait / always wait
        dyn = DynamicLookaheadRecognizer(tiny_model, CascadePolicy(ladder, threshold=thr))
        fixed = StreamingRecognizer(tiny_model, list(ctx))
        for audio in test_audio[:2]:
            a = transcribe_streaming(dyn, audio)
            b = transcribe_streaming(fixed, audio)
            assert _tokens(a) == _tokens(b)
            pa = np.concatenate([e.eou_prob for e in a if isinstance(e, Partial)])
            pb = np.concatenate([e.eou_prob for e in b if isinstance(e, Partial)])
            assert pa.shape == pb.shape and np.abs(pa - pb).max() < 1e-5


def test_decisions_cover_every_frame_once(tiny_model, test_audio):
    from workbench.asr.lookahead import CascadePolicy, DynamicLookaheadRecognizer, transcribe_dynamic
    from workbench.asr.streaming import StreamingRecognizer, transcribe_streaming
    # a threshold in the middle of the probes' range, so that the policy really mixes contexts
    dyn = DynamicLookaheadRecognizer(tiny_model, CascadePolicy(((70, 0), (70, 4), (70, 13)), threshold=0.0))
    probe = DynamicLookaheadRecognizer(tiny_model, CascadePolicy(((70, 0), (70, 4), (70, 13)), threshold=1.0))
    _, dec = transcribe_dynamic(probe, test_audio[:1])
    us = [u for d in dec[0] for _, u in d.probes]
    dyn.policy.threshold = float(np.median(us))
    texts, decisions = transcribe_dynamic(dyn, test_audio)
    for audio, dec, text in zip(test_audio, decisions, texts):
        starts = [d.start for d in dec]
        assert starts == sorted(starts) and starts[0] == 0
        assert all(b.start == a.start + a.frames for a, b in zip(dec, dec[1:]))    # no gap, no overlap
        offline = transcribe_streaming(StreamingRecognizer(tiny_model, [70, 13]), audio)
        assert dec[-1].start + dec[-1].frames == [e for e in offline if isinstance(e, Partial)][-1].encoder_frames
    assert len({d.context for dec in decisions for d in dec}) >= 2, "the policy never changed its context"


def test_live_stream_equals_batched_replay(tiny_model, test_audio):
    from workbench.asr.lookahead import CascadePolicy, DynamicLookaheadRecognizer, transcribe_dynamic
    from workbench.asr.streaming import transcribe_streaming
    dyn = DynamicLookaheadRecognizer(tiny_model, CascadePolicy(((70, 0), (70, 13)), threshold=0.9))
    texts, decisions = transcribe_dynamic(dyn, test_audio)
    for audio, text, dec in zip(test_audio, texts, decisions):
        st_events = transcribe_streaming(dyn, audio, frame_ms=30)
        assert st_events[-1].nbest[0].text == text
    # and each live stream recorded the same decisions
    st = dyn.new_stream("x")
    for a in range(0, len(test_audio[0]), 480):
        dyn.accept_audio(st, test_audio[0][a:a + 480])
    dyn.finalize(st)
    assert [(d.start, d.frames, d.context) for d in st.decisions] == \
        [(d.start, d.frames, d.context) for d in decisions[0]]


def test_latency_accounting():
    from workbench.asr.lookahead import Decision, mean_latency_ms
    fixed13 = [Decision(i * 14, 14, (70, 13)) for i in range(5)]
    assert mean_latency_ms(fixed13, 0.08) == pytest.approx(600)
    mixed = [Decision(0, 1, (70, 0)), Decision(1, 14, (70, 13))]
    assert mean_latency_ms(mixed, 0.08) == pytest.approx(80 * (1 + 105) / 15)


@pytest.mark.parametrize("ctx", [(70, 1), (70, 13)], ids=lambda c: f"lookahead{c[1]}")
def test_fixed_latency_is_measured_on_the_chunks_streaming_runs(tiny_model, test_audio, ctx):
    """A fixed lookahead goes through the cascade code as a one-rung ladder; its latency is the wait of the
    chunks it committed, which are the plain streaming recogniser's steps (first and last included)."""
    from workbench.asr.bench import fixed_points
    from workbench.asr.streaming import StreamingRecognizer, transcribe_streaming
    from workbench.events import Partial
    rec = StreamingRecognizer(tiny_model, list(ctx))
    frames = [p_frames for a in test_audio for p_frames in
              [e.encoder_output.shape[0] for e in transcribe_streaming(rec, a) if isinstance(e, Partial)]]
    waited = sum(k * (k + 1) // 2 for k in frames) / sum(frames) * rec.frame_s * 1000
    pt = fixed_points(tiny_model, test_audio, ["x"] * len(test_audio), contexts=[ctx])[0]
    assert pt["latency_ms"] == pytest.approx(waited)


def test_bad_policies_are_refused(tiny_model):
    from workbench.asr.lookahead import CascadePolicy, DynamicLookaheadRecognizer, uncertainty
    with pytest.raises(ValueError, match="grow"):
        CascadePolicy(((70, 13), (70, 0)))
    with pytest.raises(ValueError, match="trained with"):
        DynamicLookaheadRecognizer(tiny_model, CascadePolicy(((70, 0), (70, 7))))
    import torch
    with pytest.raises(ValueError, match="maxprob"):
        uncertainty(torch.zeros(2, 3), "nonsense")


def test_goals_are_read_off_the_front():
    from workbench.asr.bench import goals, interpolate_fixed
    fixed = [{"policy": f"fixed {r}", "context": [70, r], "latency_ms": l, "wer": w}
             for r, l, w in [(0, 80, 0.30), (4, 240, 0.20), (13, 600, 0.10)]]
    assert interpolate_fixed(fixed, 420) == pytest.approx(0.15)
    better = [{"policy": "cascade 0>13 @0.3", "latency_ms": 300, "wer": 0.10}]
    g = goals(fixed, better)
    assert g["below_fixed_front"] and g["max_wer_gain_over_fixed_front"] == pytest.approx(0.0833, abs=1e-3)
    assert g["latency_saving_at_equal_wer"] == pytest.approx(0.5) and g["saving_goal_met"]
    worse = [{"policy": "cascade 0>13 @0.3", "latency_ms": 300, "wer": 0.25}]
    g = goals(fixed, worse)
    assert not g["below_fixed_front"] and g["latency_saving_at_equal_wer"] is None and not g["saving_goal_met"]


def test_bench_asr_writes_json_and_plot(tiny_nemo, smoke_corpus, tmp_path, capsys):
    import json
    from workbench.__main__ import main
    assert main(["bench", "asr", "--model", str(tiny_nemo), "--n", "2", "--n-dev", "2", "--corpus-size", "smoke",
                 "--thresholds", "0.5,0.9", "--n-splits", "2", "--out", str(tmp_path), "--results", str(tmp_path / "results")]) == 0
    res = json.loads((tmp_path / "bench_asr.json").read_text())
    assert json.loads((tmp_path / "results" / "bench_asr.json").read_text())["provenance"]["commit"]
    assert (tmp_path / "asr_front.png").stat().st_size > 1000
    # every cascade on dev, one chosen per ladder and only those on test
    assert len(res["dev"]["dynamic"]) == 6 and len(res["dynamic"]) == 3 and res["n_utterances"] == 2
    assert [p["policy"] for p in res["dynamic"]] == res["dev"]["chosen"]
    assert len(res["fixed"]) == 4
    for p in res["fixed"] + res["dynamic"]:
        lo, hi = p["wer_ci95"]
        assert p["latency_ms"] > 0 and lo <= p["wer"] <= hi and p["n"] == 2
    esp = res["espnet"]           # the shipped ESPnet model decodes the same utterances, beside NeMo
    assert esp["latency_ms"] == 980.0 and esp["measured_wait_ms"] >= esp["latency_ms"]
    assert res["rtf"]["espnet"] > 0 and set(res["rtf"]["nemo"]) == {"[70, 0]", "[70, 13]"}
    # the per-split table: ours and both peers on the same utterances of every set
    table = res["splits"]["table"]
    assert len(table) == 5 and any("Whisper base" in k for k in table) and any("PocketSphinx" in k for k in table)
    sets = {"test", "unseen engine", "unseen text", "real: asterisk:en heldout", "real: pocketsphinx:librivox",
            "real: pocketsphinx:cards"}
    for row in table.values():
        assert sets <= set(row)
        assert set(row) - sets \
            <= {"clean test", "noisy test", "truncated test"}       # the parts of test the 2 utterances have
        assert all(v["n"] >= 1 and v["ci95"][0] <= v["wer"] <= v["ci95"][1] for v in row.values())
    assert all(r > 0 for r in res["splits"]["rtf"].values())
    assert res["splits"]["streaming"]["peer: Whisper tiny.en (not streaming)"] is False
    assert (tmp_path / "asr_splits.png").stat().st_size > 1000
    whisper = table["peer: Whisper tiny.en (not streaming)"]
    assert whisper["real: pocketsphinx:librivox"]["wer"] < 0.5     # a real recogniser, not a stub
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{"):])["goals"] == res["goals"]
