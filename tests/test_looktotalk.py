"""Look-to-talk: the simulated camera cue, the field's error rates, the fusion with a cue missing, and the bench
end to end on the smoke corpora."""
import numpy as np
import pytest

from workbench.looktotalk.models import eer, far_at_frr, fit_fusion, fusion_inputs, subsets
from workbench.looktotalk.visual import CUES, simulate, summarise


def test_simulated_cue_looks_at_the_device_when_spoken_to():
    rng = np.random.default_rng(0)
    gaze = {d: [summarise(simulate(d, 2.0, rng))[1] for _ in range(400)] for d in (True, False)}
    assert np.mean(gaze[True]) > np.mean(gaze[False]) + 0.3
    # but not always: some side talk looks at the screen (the visual cue's hard case)
    assert np.mean(np.array(gaze[False]) > 0.6) > 0.1
    seq = simulate(True, 1.0, rng)
    assert seq.shape == (18, len(CUES))


def test_no_face_is_all_zeros_and_summarises_to_zeros():
    assert not summarise(np.zeros((10, len(CUES)), np.float32)).any()


def test_eer_and_false_accepts_at_ten_percent_false_rejects():
    y = np.array([1] * 10 + [0] * 10)
    assert eer(np.r_[np.ones(10), np.zeros(10)], y) == 0.0
    # two side-talk utterances score above the worst request: at 10 % false rejects (one request lost), one
    # side-talk utterance still gets in
    s = np.r_[np.linspace(1, 2, 10), np.r_[1.5, 1.05, np.linspace(-2, -1, 8)]]
    assert far_at_frr(s, y, 0.10) == pytest.approx(0.1)
    assert 0.0 < eer(s, y) <= 0.15


def test_fusion_works_with_any_cue_missing():
    rng = np.random.default_rng(1)
    y = rng.random(600) < 0.5
    logits = np.stack([np.where(y, 2.0, -2.0) + rng.normal(0, 1, 600),       # informative
                       rng.normal(0, 1, 600),                                 # noise
                       np.where(y, 1.0, -1.0) + rng.normal(0, 1, 600)], 1)    # weaker
    fusion = fit_fusion(logits, y)
    acc = {m: np.mean((fusion.decision_function(fusion_inputs(logits, m)) > 0) == y) for m in subsets()}
    assert acc[(True, True, True)] >= acc[(True, False, False)] > 0.9
    assert 0.7 < acc[(False, False, True)] < acc[(True, False, False)]
    assert acc[(False, True, False)] < 0.6                    # noise alone decides nothing
    assert fusion_inputs(logits[:1], (True, False, True))[0, 1] == 0.0


def test_bench_runs_end_to_end_on_the_smoke_corpora(tmp_path, smoke_corpus):
    from workbench.looktotalk.bench import run
    r = run("smoke", n_train=16, n_dev=8, n_test=8, epochs=2, out_dir=tmp_path, cache=False, log=lambda *a: None)
    assert r["n"]["test"] == 16 and r["n"]["test_side_talk"] == 8
    assert set(r["systems"]) >= {"acoustic", "lexical", "visual", "acoustic + lexical + visual"}
    for s in r["systems"].values():
        assert 0.0 <= s["EER"]["value"] <= 1.0
    assert (tmp_path / "bench_looktotalk.json").is_file() and (tmp_path / "looktotalk_det.png").is_file()
