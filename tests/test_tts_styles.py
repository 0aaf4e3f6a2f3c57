"""Stage directions: parsing tagged text, the words a recogniser should hear, the SSML espeak-ng is given, and
typed errors for text that cannot be spoken as asked."""
import pytest

from workbench.tts import DELIVERIES, StageDirectionError, parse, piece_ssml, pieces, plain


def test_delivery_tags_hold_until_the_next_and_events_stay_in_place():
    segs = parse("[excited] Your package arrived early! [pause] Want me to read it? [apologetic] Sorry, [um] no.")
    assert [s.delivery for s in segs] == ["excited", "apologetic"]
    assert segs[0].words == ["Your", "package", "arrived", "early!", "Want", "me", "to", "read", "it?"]
    assert segs[0].events == [(4, "pause")] and segs[1].events == [(1, "um")]
    assert segs[0].style == DELIVERIES["excited"]
    assert plain("[calm] okay [uh] then [laugh] [pause] bye") == "okay uh then ha ha bye"
    assert [s.delivery for s in parse("no tag at all")] == ["neutral"]
    assert [s.delivery for s in parse("[WHISPER] quiet")] == ["whisper"]        # tags are case-insensitive


def test_pieces_cut_at_pauses_and_ssml_carries_each_requested_value():
    ps = pieces(parse("[pause] [excited] great [pause] [breath] news [um] [whisper] secret [laugh]"))
    assert [(p.delivery, p.words, p.pause_ms) for p in ps] == [
        ("excited", ["great"], 650), ("excited", ["news", "um,"], 0), ("whisper", ["secret", "ha", "ha,"], 0)]
    ssml = piece_ssml(ps[0])
    assert ssml == ('<speak><prosody rate="112%" pitch="+18%" range="+70%" volume="120%">great</prosody></speak>')
    assert "&amp;" in piece_ssml(pieces(parse("salt & pepper"))[0])          # escaped, never broken markup


@pytest.mark.parametrize("text, what", [
    ("", "empty"), ("   [pause] ", "empty"), ("[shouting] hey", "unknown stage direction"),
    ("x " * 400, "at most"), ("привет мир", "another script"), ("今日は", "another script"), (None, "string"),
])
def test_bad_input_is_a_typed_error(text, what):
    with pytest.raises(StageDirectionError, match=what):
        parse(text)
