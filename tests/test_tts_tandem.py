"""Tagger and synthesiser in tandem: a delivery the synthesiser does not realise is measured as such and replaced by
one it does; what it realises passes untouched."""
import re

from workbench.tts.render import render_espeak
from workbench.tts.tandem import agreement, fidelity, realised_tags, select, substitute


def test_a_direction_the_voice_ignores_is_measured_and_replaced():
    ignores_loud = lambda t: render_espeak(re.sub(r"\[loud\]\s*", "", t)).audio      # noqa: E731
    fid = fidelity(ignores_loud, ["your timer is done", "i added milk to your list"])
    assert fid["loud"]["cosine"] < 0.5 and fid["loud"]["n"] == 2
    assert {"slow", "fast", "high", "low", "soft", "whisper"} <= set(realised_tags(fid))
    new = substitute("loud", fid)
    assert new != "loud" and (new == "neutral" or new in realised_tags(fid))
    out = select("[loud] Done! [pause] [slow] Anything else?", fid)
    assert "[loud]" not in out and out.endswith("[pause] [slow] Anything else?")
    assert select("[fast] Done [um] now.", fid) == "[fast] Done [um] now."
    assert select("[loud] Done.", None) == "[loud] Done."


def test_agreement_counts_directions_the_voice_realises_before_and_after_selection():
    dev = {"loud": {"cosine": 0.1, "n": 2}, "excited": {"cosine": 0.9, "n": 2}, "soft": {"cosine": 0.8, "n": 2}}
    test = {"loud": {"cosine": 0.2, "n": 2}, "excited": {"cosine": 0.7, "n": 2}, "soft": {"cosine": 0.3, "n": 2}}
    a = agreement(["[loud] Hi. [excited] Yes!", "[soft] ok [pause] [neutral] fine"], dev, test)
    assert (a["as_written"]["k"], a["as_written"]["n"]) == (1, 3)      # excited only; neutral is not counted
    x = substitute("loud", dev)                                        # the nearest realised, or neutral
    assert x in ("neutral", "excited", "soft") and a["changed"] == 1
    names = [n for n in (x, "excited", "soft") if n != "neutral"]
    assert (a["selected"]["k"], a["selected"]["n"]) == (names.count("excited"), len(names))
