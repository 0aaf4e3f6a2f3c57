"""Real human speech from Debian packages, and the peer recognisers (Whisper tiny.en, PocketSphinx) behind the
same interface and scoring as ours."""
import time

import numpy as np
import pytest

from workbench.asr.peers import PocketSphinxRecognizer, WhisperRecognizer, load_whisper
from workbench.asr.scoring import normalize, wer_ci
from workbench.asr.streaming import ModelNotAvailableError, transcribe_streaming
from workbench.data import open_dataset
from workbench.data import real as R


@pytest.fixture(scope="module")
def asterisk():
    return open_dataset("asterisk:en")


def test_real_speech_opens_by_name_at_16k(asterisk):
    assert 550 <= len(asterisk) <= 570
    hours = sum(e["duration"] for e in asterisk.entries) / 3600
    assert 0.35 < hours < 0.5                                    # ~25 min of prompts
    x = asterisk.audio(0)
    assert x.dtype == np.float32 and np.abs(x).max() > 0.05
    assert len(x) / 16000 == pytest.approx(asterisk.entries[0]["duration"], abs=0.01)
    libri = open_dataset("pocketsphinx:librivox")
    assert len(libri) == 5 and all(e["engine"] == "human" for e in libri.entries)


def test_missing_package_is_a_typed_error(monkeypatch, tmp_path):
    monkeypatch.setattr(R, "ASTERISK_TXT", tmp_path / "nope.txt.gz")
    with pytest.raises(R.RealSpeechUnavailableError, match="asterisk-core-sounds-en"):
        R.real_entries("asterisk", "en", cache=tmp_path)
    with pytest.raises(R.RealSpeechUnavailableError, match="known: asterisk:en"):
        R.real_entries("asterisk", "fr", cache=tmp_path)


def test_normaliser_treats_digits_and_number_words_alike():
    assert normalize("Set a timer for 25 minutes.") == normalize("set a timer for twenty five minutes")
    assert normalize("um turn it off") == normalize("turn it off")


def test_whisper_peer_recognises_real_speech(asterisk):
    rec = WhisperRecognizer(beam_size=1)
    idx = [3, 50, 100, 200, 300]
    hyps = [transcribe_streaming(rec, asterisk.audio(i))[-1].text for i in idx]
    w = wer_ci([asterisk.entries[i]["text"] for i in idx], hyps)
    assert w["value"] < 0.2, list(zip(hyps, [asterisk.entries[i]["text"] for i in idx]))


def test_pocketsphinx_peer_decodes_incrementally():
    ds = open_dataset("pocketsphinx:librivox")
    rec = PocketSphinxRecognizer()
    hyps = [transcribe_streaming(rec, ds.audio(i))[-1].text for i in range(2)]
    w = wer_ci([e["text"] for e in ds.entries[:2]], hyps)
    assert w["value"] < 0.6, hyps


def test_whisper_by_name_offline_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.time()
    with pytest.raises(ModelNotAvailableError, match="cannot be reached"):
        load_whisper("tiny.en")
    assert time.time() - t0 < 5
