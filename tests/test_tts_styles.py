"""Stage directions: parsing tagged text, the words a recogniser should hear, the SSML espeak-ng is given, and
typed errors for text that cannot be spoken as asked."""
import pytest

from workbench.tts import DELIVERIES, StageDirectionError, parse, plain, to_ssml


def test_delivery_tags_hold_until_the_next_and_events_stay_in_place():
    segs = parse("[excited] Your package arrived early! [pause] Want me to read it? [apologetic] Sorry, [um] no.")
    assert [s.delivery for s in segs] == ["excited", "apologetic"]
    assert segs[0].words == ["Your", "package", "arrived", "early!", "Want", "me", "to", "read", "it?"]
    assert segs[0].events == [(4, "pause")] and segs[1].events == [(1, "um")]
    assert segs[0].style == DELIVERIES["excited"]
    assert plain("[calm] okay [uh] then [laugh] [pause] bye") == "okay uh then ha ha bye"
    assert [s.delivery for s in parse("no tag at all")] == ["neutral"]
    assert [s.delivery for s in parse("[WHISPER] quiet")] == ["whisper"]        # tags are case-insensitive


def test_ssml_carries_each_requested_value():
    ssml, variants = to_ssml(parse("[excited] great [pause] news [whisper] secret"))
    assert 'rate="112%" pitch="+18%" range="+70%" volume="120%">great <break time="450ms"/> news</prosody>' in ssml
    assert variants == ["", "whisper"]
    assert ssml.startswith("<speak>") and ssml.endswith("</speak>")
    assert "&amp;" in to_ssml(parse("salt & pepper"))[0]                       # escaped, never broken markup


@pytest.mark.parametrize("text, what", [
    ("", "empty"), ("   [pause] ", "empty"), ("[shouting] hey", "unknown stage direction"),
    ("x " * 400, "at most"), ("привет мир", "another script"), ("今日は", "another script"), (None, "string"),
])
def test_bad_input_is_a_typed_error(text, what):
    with pytest.raises(StageDirectionError, match=what):
        parse(text)
