"""The fused cut detector: the transcript's P(cut) and the arbitrator's P(end) after the last speech."""
import numpy as np
import pytest

from workbench.endpoint.signals import Signals
from workbench.repair.acoustic import FusedCutDetector, p_end_after_speech, speech_end


def _utterance(cut: bool, rng) -> Signals:
    end = float(rng.uniform(1.0, 2.0))                        # s: last speech
    hop = 0.032
    vad = (np.arange(int(4.0 / hop)) * hop < end).astype(np.float32)
    steps = np.arange(0.16, 4.0, 0.16)
    # the arbitrator hears a finished sentence soon after its end; a cut one only once the silence is long
    p = np.where(steps < end, 0.05, np.where(steps < end + 0.7, 0.1 if cut else 0.9, 0.8)).astype(np.float32)
    s = Signals("u", "", end, 4.0, truncated=cut, vad_prob=vad, vad_hop=hop, step_time=steps)
    s._p = p
    return s


def test_fitted_on_dev_it_reads_how_it_was_said():
    rng = np.random.default_rng(0)
    truth = [bool(x) for x in rng.random(200) < 0.2]
    sig = [_utterance(c, rng) for c in truth]
    probs = lambda s: s._p                                      # the arbitrator's outputs, given
    assert abs(speech_end(sig[0]) - sig[0].true_end) < 0.04
    p_cut = rng.uniform(0.2, 0.8, len(truth))                  # a transcript that says nothing either way
    det = FusedCutDetector.fit(p_cut, sig, probs, truth)
    assert det.delay_s < 0.7 and det.coef[1] < 0 and det.dev_f1 == 1.0
    # late, the cue is gone: every utterance sounds finished
    assert np.ptp(p_end_after_speech(sig, probs, 1.0)) == 0
    test = [_utterance(c, rng) for c in truth]
    assert list(det.detect(p_cut, p_end_after_speech(test, probs, det.delay_s))) == truth


def test_it_needs_both_kinds_to_fit():
    rng = np.random.default_rng(1)
    sig = [_utterance(False, rng) for _ in range(5)]
    with pytest.raises(ValueError, match="cut and whole"):
        FusedCutDetector.fit([0.1] * 5, sig, lambda s: s._p, [False] * 5)
