"""Widgets in the kernel (no browser: tests/test_browser.py drives them in chromium): the microphone
widget's block path, its corpus export and live session; the end-point tuner's re-scoring."""
import json

import numpy as np
import pytest

from workbench.endpoint import PauseEndpointer, Signals, score, summarize
from workbench.widgets import EndpointTuner, MicCapture

HOP = 0.032


def _sig(i, pause_at=None):
    vad = [0] * 5 + [1] * 20 + ([0] * 12 + [1] * 10 if pause_at else []) + [0] * 40
    end = (25 + (22 if pause_at else 0)) * HOP
    pauses = ((25 * HOP, 37 * HOP, "hesitation"),) if pause_at else ()
    return Signals(f"u{i}", "set a timer", true_end=end, audio_end=len(vad) * HOP,
                   words=(("set", 0.2, 0.5), ("a", 0.5, 0.6), ("timer", 0.6, end)), pauses=pauses,
                   vad_prob=np.asarray(vad, np.float32), vad_hop=HOP)


def test_tuner_rescores_from_cached_signals():
    sigs = [_sig(0), _sig(1, pause_at=True), _sig(2)]
    tuner = EndpointTuner(sigs, curves={"pause": []})
    short = tuner.rescore(pause_ms=200)["pause"]
    assert short == summarize(score(PauseEndpointer(200), sigs))
    assert short["cutoff_rate"] == pytest.approx(1 / 3), "the hesitation is cut off at 200 ms"
    long = tuner.rescore(pause_ms=600)["pause"]
    assert long["cutoff_rate"] == 0 and long["EP90_ms"] > short["EP90_ms"]
    assert tuner.last_rescore_s is not None
    with pytest.raises(ValueError, match="unknown setting"):
        tuner.rescore(pause=3)
    with pytest.raises(ValueError):
        EndpointTuner([])


def test_tuner_widget_redraws_on_slider_moves():
    tuner = EndpointTuner([_sig(0), _sig(1, pause_at=True)])
    box = tuner.widget()
    assert box is not None
    before = tuner._ui["stats"].value
    tuner._ui["pause_ms"].value = 150
    assert tuner.values["pause_ms"] == 150 and tuner._ui["stats"].value != before


def test_mic_blocks_reach_callbacks_and_the_recording(tmp_path, test_audio):
    mic = MicCapture()
    got = []
    mic.on_chunk(got.append)
    audio = test_audio[0]
    mic.feed(audio)
    assert [len(b) for b in got[:-1]] == [1600] * (len(got) - 1), "100 ms blocks at 16 kHz"
    np.testing.assert_allclose(mic.audio(), audio, atol=1 / 32767 + 1e-6)
    line = mic.to_corpus(tmp_path, text="hello there", utt_id="rec1")
    assert (tmp_path / "wav" / "rec1.wav").exists() and line["duration"] == pytest.approx(len(audio) / 16000, abs=1e-3)
    saved = [json.loads(x) for x in (tmp_path / "recordings.json").read_text().splitlines()]
    assert saved[-1]["text"] == "hello there" and 0 < saved[-1]["speech_end"] <= line["duration"]
    from workbench.data import open_dataset
    assert open_dataset(tmp_path / "recordings.json").audio(0).shape == audio.shape, "a manifest our loaders read"
    with pytest.raises(ValueError, match="Record"):
        MicCapture().save(tmp_path / "x.wav")


def test_mic_live_session_transcribes_as_the_recogniser(tiny_model, test_audio):
    from workbench.asr.streaming import StreamingRecognizer, transcribe_streaming
    rec = StreamingRecognizer(tiny_model, [70, 1])
    mic = MicCapture()
    session = mic.connect(rec, PauseEndpointer(300))
    audio = test_audio[1]
    mic.feed(audio)
    quantised = (np.clip(audio, -1, 1) * 32767).astype(np.int16).astype(np.float32) / 32768.0
    want = transcribe_streaming(rec, quantised, frame_ms=100)[-1]
    assert mic.transcript == session.final.text == want.text


@pytest.fixture(scope="module")
def shipped_rec():
    from workbench.asr.recipe import default_recognizer
    rec, _, shipped = default_recognizer(None, (70, 1), "cpu")
    assert shipped, "the shipped default model is part of the repository"
    return rec


def test_mic_end_points_live_with_every_end_pointer(shipped_rec, smoke_corpus):
    """The widget's live session feeds the end-pointer the recogniser's own events: the EOU end-pointer fires,
    and the two-pass one is accepted by its arbitrator before max_wait, each at the time the same end-pointer
    finds offline on the same audio."""
    from workbench.data import is_clean, open_dataset
    from workbench.endpoint import EouEndpointer, TwoPassEndpointer, compute_signals
    from workbench.endpoint.arbitrator import ArbitratorProbs, load
    from workbench.endpoint.arbitrator import ARBITRATOR_DIR
    from workbench.audio import extend_after_speech
    ds = open_dataset(smoke_corpus, "test")
    # clean and without a mid-sentence pause: the pause proposal is the true end, which the arbitrator accepts
    i = next(k for k, e in enumerate(ds.entries) if is_clean(e) and not e["pauses"])
    e = ds.entries[i]
    audio = extend_after_speech(ds.audio(i), float(e["speech_end"]), 2.0)
    quantised = (np.clip(audio, -1, 1) * 32767).astype(np.int16).astype(np.float32) / 32768.0
    sig = compute_signals(shipped_rec, [e], [quantised])[0]
    probs = ArbitratorProbs(load(ARBITRATOR_DIR))
    max_wait = 1500
    eps = {"pause": PauseEndpointer(500), "eou": EouEndpointer(0.5),
           "two-pass": TwoPassEndpointer(PauseEndpointer(250), probs, 0.5, max_wait)}
    for name, ep in eps.items():
        want = ep.endpoint(sig)
        assert want is not None, f"{name} fires offline on this clean utterance"
        mic = MicCapture()
        session = mic.connect(shipped_rec, ep)
        mic.feed(audio)
        assert mic.endpoint == pytest.approx(want, abs=1e-6), name
        assert session.final.text
    proposal = PauseEndpointer(250).endpoint(sig)
    assert eps["two-pass"].endpoint(sig) < proposal + max_wait / 1000 - 1e-6, "accepted by the arbitrator, not forced"


# ------------------------------------------------------------------ the camera widget's vendored face mesh and cues

def _tgz(files: dict) -> bytes:
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_face_mesh_vendoring_checks_the_registry_hash_and_writes_all_or_nothing(tmp_path):
    import base64
    import hashlib
    from workbench.widgets import assets
    good = _tgz({f: f.encode() * 3 for f in assets.FILES})
    sri = "sha512-" + base64.b64encode(hashlib.sha512(good).digest()).decode()
    folder = assets.unpack(good, tmp_path / "fm", integrity=sri)
    assert sorted(assets.load(folder)) == sorted(assets.FILES)
    assert (folder / "face_mesh.js").read_bytes() == b"face_mesh.js" * 3
    # a tarball that is not the published one is refused, and what was there stays
    bad = _tgz({f: b"tampered" for f in assets.FILES})
    with pytest.raises(ValueError, match="sha512"):
        assets.unpack(bad, folder, integrity=sri)
    assert (folder / "face_mesh.js").read_bytes() == b"face_mesh.js" * 3
    (folder / "face_mesh.binarypb").unlink()
    with pytest.raises(assets.FaceMeshMissingError, match="make setup"):
        assets.load(folder)


def test_camera_cue_keeps_the_cues_in_time_and_refuses_bad_ones():
    from workbench.looktotalk.visual import CUES
    from workbench.widgets import CameraCue
    cam = CameraCue()
    for k in range(5):
        cam.push([1, 10.0 * k, 0, 0.9, 0.2], at=100.0 + k)
    assert cam.sequence(102.0).shape == (3, len(CUES)) and cam.sequence(102.0)[0, 1] == 20.0
    with pytest.raises(ValueError, match="5 finite numbers"):
        cam.push([1, float("nan"), 0, 0.9, 0.2])
    with pytest.raises(ValueError, match="5 finite numbers"):
        cam.push([1, 0, 0])
    # what the page sends: a cue message, and a refused camera
    cam._on_msg(cam, {"type": "cue", "face": 1, "yaw": 3.0, "pitch": 1.0, "gaze": 0.8, "mouth": 0.1}, [])
    assert cam.sequence(t0=1e12).shape == (0, len(CUES)) and len(cam.cues) == 6
    cam._on_msg(cam, {"type": "unavailable", "why": "Camera permission denied."}, [])
    assert cam.available is False
