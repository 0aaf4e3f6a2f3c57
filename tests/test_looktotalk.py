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


def _fake_utts(n, rng, d_enc=16, vocab=50):
    from workbench.looktotalk.features import PROSODY, Utterance
    words = ["set a timer for ten minutes", "did you see that", "turn off the lights", "he called me earlier"]
    out = []
    for i in range(n):
        directed = bool(i % 2)
        enc = (rng.normal(0.5 if directed else -0.5, 1, (rng.integers(5, 20), d_enc))).astype(np.float16)
        out.append(Utterance(f"u{i}", directed, "request" if directed else "remark", "request", words[i % 4], enc,
                             list(rng.integers(0, vocab, rng.integers(1, 8))), rng.normal(0, 1, len(PROSODY)).astype(np.float32),
                             1.5, words[i % 4]))
    return out


def test_models_save_and_load_to_the_same_scores(tmp_path):
    from workbench.looktotalk.models import DirectednessModels, train
    rng = np.random.default_rng(0)
    tr, dv = _fake_utts(40, rng), _fake_utts(20, rng)
    vis = lambda us: np.stack([np.r_[1.0, 0.9 if u.directed else 0.2, rng.random(4)] for u in us]).astype(np.float32)
    tv, dvv = vis(tr), vis(dv)
    models, _ = train(tr, dv, tv, dvv, vocab=50, epochs=2, log=lambda *a: None)
    folder = models.save(tmp_path / "ltt", {"thresholds": {"acoustic + lexical": 0.7}})
    again = DirectednessModels.load(folder, lm=models.lm)
    L, L2 = models.logits(dv, dvv), again.logits(dv, dvv)
    np.testing.assert_allclose(L, L2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(models.fuse(L), again.fuse(L2), rtol=1e-5, atol=1e-5)
    assert again.threshold((True, True, False)) == 0.7 and again.threshold() == 0.5
    with pytest.raises(FileNotFoundError, match="train-looktotalk"):
        DirectednessModels.load(tmp_path / "nothing")


def test_bench_and_the_running_score_while_speaking(tmp_path, smoke_corpus):
    """The bench end to end on the smoke corpora, its models shipped and reloaded; then the live path: a microphone replay through the streaming recogniser, the camera's cues, a score every
    half-second of audio, the visual cue left out when the camera is refused."""
    from workbench.asr.recipe import default_recognizer
    from workbench.data import open_dataset
    from workbench.looktotalk.bench import run
    from workbench.looktotalk.live import LiveLookToTalk
    from workbench.looktotalk.models import DirectednessModels
    from workbench.widgets import CameraCue, MicCapture
    r = run("smoke", n_train=16, n_dev=8, n_test=8, epochs=2, out_dir=tmp_path, cache=False, log=lambda *a: None,
            save_models=tmp_path / "ltt")
    assert r["n"]["test"] == 16 and r["n"]["test_side_talk"] == 8
    assert set(r["systems"]) >= {"acoustic", "lexical", "visual", "acoustic + lexical + visual"}
    for s in r["systems"].values():
        assert 0.0 <= s["EER"]["value"] <= 1.0
    assert (tmp_path / "bench_looktotalk.json").is_file() and (tmp_path / "looktotalk_det.png").is_file()
    assert set(r["running score"]) == {"half", "end"}
    assert 0 < r["running score"]["half"]["heard_s_mean"] < r["running score"]["end"]["heard_s_mean"]
    models = DirectednessModels.load(tmp_path / "ltt")
    assert set(models.thresholds) >= {"acoustic + lexical + visual", "acoustic + lexical"}
    rec, _, _ = default_recognizer(None, (70, 1))
    ds = open_dataset(smoke_corpus, "test")
    audio = ds.audio(0)
    seen = {}
    for camera_on in (True, False):
        mic, cam = MicCapture(), CameraCue()
        session = mic.connect(rec)
        live = LiveLookToTalk(mic, session, cam, models, every_s=0.5)
        if camera_on:
            import time
            for k in range(30):                  # a face looking at the device, 12 a second
                cam.push([1, 2.0, -3.0, 0.9, 0.4], at=time.time() - 1.0 + k / 12)
        else:
            cam._on_msg(cam, {"type": "unavailable"}, [])
        mic.feed(audio)
        n_updates = int(len(audio) / 16000 / 0.5 + 1e-9) + 1          # every half-second, and at the stop
        assert len(live.scores) == n_updates, live.scores
        heard = [s[0] for s in live.scores]
        assert heard == sorted(heard) and heard[-1] == pytest.approx(len(audio) / 16000, abs=0.11)
        assert all(0.0 < s[1] < 1.0 for s in live.scores)
        assert all(s[2] == (True, True, camera_on) for s in live.scores)
        assert cam.score == live.scores[-1][1] and cam.threshold == models.threshold((True, True, camera_on))
        assert live.decision() == (live.scores[-1][1] >= models.threshold((True, True, camera_on)))
        seen[camera_on] = live.utterance()
    # the same audio through the same recogniser: what the classifiers read does not depend on the camera
    assert seen[True].tokens == seen[False].tokens and seen[True].encoder.shape == seen[False].encoder.shape


def test_heard_so_far_reads_the_last_step_that_could_have_run():
    from types import SimpleNamespace
    from workbench.looktotalk.features import PROSODY, heard_so_far
    rec = SimpleNamespace(vocab_size=10,
                          text=lambda toks: " ".join(f"w{t}" for t in toks))
    step_time, step_frames = np.array([0.6, 1.2, 1.8]), np.array([4, 8, 12])
    tokens = [[1], [1, 2, 11], [1, 2, 3]]               # 11: a special token past the vocabulary
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, 32000).astype(np.float32)
    vad = np.ones(int(2.0 / 0.032), np.float32)
    assert heard_so_far(0.5, step_time, step_frames, tokens, audio, vad, 0.032, rec)[1:4] == (0, [], "")
    at, frames, toks, words, pros = heard_so_far(1.5, step_time, step_frames, tokens, audio, vad, 0.032, rec)
    assert (at, frames, toks, words) == (1.5, 8, [1, 2], "w1 w2") and pros.shape == (len(PROSODY),)
    assert pros[PROSODY.index("speech seconds")] == pytest.approx(1.5, abs=0.04)     # the audio up to then only
    assert heard_so_far(5.0, step_time, step_frames, tokens, audio, vad, 0.032, rec)[1] == 12
