"""The expressive ground truth: espeak-ng renders tagged responses through SSML with every word timed, and the
prosody measurement sees each requested change in the audio (what the TTS bench scores every system with)."""
import numpy as np
import pytest

from workbench.data.synth import engine
from workbench.tts import DELIVERIES, StageDirectionError
from workbench.tts.prosody import measure, realisation, realised, requested
from workbench.tts.render import TARGET, render_espeak
from workbench.tts.responses import HELD_OUT, TEMPLATES, TRAIN, fill, sample, untag
from workbench.tts.styles import parse


def test_ssml_word_starts_skip_the_markup():
    wav, starts = engine().speak('<speak><prosody rate="140%">set a <break time="300ms"/> timer &amp; go</prosody>'
                                 '</speak>', TARGET, ssml=True)
    assert len(starts) == 5 and starts == sorted(starts) and starts[-1] < len(wav)
    plain, _ = engine().speak("set a timer & go", TARGET)
    assert len(wav) < len(plain) + 0.3 * 22050     # faster, despite the break: the markup was obeyed, not read


def test_rendering_times_every_word_and_places_pauses():
    r = render_espeak("[excited] Your package arrived early! [pause] Want me to read it? [whisper] it is a secret")
    assert [w for w, _, _ in r.words] == "Your package arrived early! Want me to read it? it is a secret".split()
    starts = [a for _, a, _ in r.words]
    assert starts == sorted(starts) and r.words[-1][2] == pytest.approx(r.duration, abs=1e-3)
    (p1, _, e1), (p2, s2, _), (p3, s3, _) = r.pieces
    assert s2 - e1 == pytest.approx(0.45, abs=0.01) and p1.pause_ms == 450       # the requested pause, exactly
    assert p3.style.whisper and not p2.style.whisper
    sr = r.sample_rate
    voiced = [measure(r.audio[int(a * sr): int(b * sr)])["voiced_share"] for _, a, b in r.pieces]
    assert voiced[2] < 0.5 * voiced[1]                                           # the whisper has lost its voice
    with pytest.raises(StageDirectionError, match="unknown"):
        render_espeak("[shouting] hello")


def test_measured_changes_follow_the_requests():
    """A real check of renderer and measurement together: over two texts and every delivery, what was asked and
    what the audio shows rank alike on rate, pitch, range and volume (espeak-ng obeys its own SSML)."""
    texts = ["your timer for ten minutes is running", "sorry i could not find anything called that"]
    rows = []
    for t in texts:
        neutral = measure(render_espeak(t).audio)
        for d in ("fast", "slow", "high", "low", "loud", "soft", "excited", "apologetic"):
            rows.append({"requested": requested(DELIVERIES[d]),
                         "realised": realised(measure(render_espeak(f"[{d}] {t}").audio), neutral)})
    res = realisation(rows)
    for a in ("rate", "pitch", "range", "volume"):
        assert res[a]["spearman"]["value"] > 0.6, (a, res[a])
    fast = [r["realised"]["rate"] for r in rows if r["requested"]["rate"] > 0.4]
    assert min(fast) > 0.2                                                         # 140 % is clearly faster


def test_measure_rejects_what_it_cannot_measure():
    with pytest.raises(ValueError, match="50 ms"):
        measure(np.zeros(100, np.float32))


def test_responses_hold_out_templates_and_untag_to_plain_text():
    assert not set(HELD_OUT) & set(TRAIN) and len(HELD_OUT) + len(TRAIN) == len(TEMPLATES)
    rng = np.random.default_rng(0)
    for _, t in TEMPLATES:
        parse(fill(t, rng))                                    # every template speaks: no unknown tag, no leftovers
    assert untag("[um] Let me think. [pause] Maybe [curious] jazz?") == "Let me think. Maybe jazz?"
    domain, plain, tagged = sample(rng, held_out=True)
    assert domain in {d for d, _ in HELD_OUT} and untag(tagged) == plain and "{" not in tagged and "[" not in plain
    filled = fill("{room} lights. and {city}", np.random.default_rng(1))
    assert filled[0].isupper() and ". And " in filled
