"""The speech-to-speech dialogues: every request is answered from its meaning, the answer says the request's values
back and follows the user's mood, the splits keep templates and voices apart, and a build is whole or absent."""
import numpy as np
import pytest

from workbench.data import templates as T
from workbench.s2s import dialogues as D
from workbench.tts.styles import DELIVERIES, TAG, parse, plain


def test_every_template_is_answered_with_its_values_said_back():
    rng = np.random.default_rng(3)
    for t in T.TEMPLATES:
        for _ in range(5):
            text = T.plain(t.fill(rng))
            frames = D.meaning(t.text, text)
            tagged = D.respond(frames)
            parse(tagged)                       # speakable: known tags, no empty text
            heard = plain(tagged).lower()
            for f in frames:
                line, roles = D.answer(f)
                for r in roles:
                    assert f.values[r].lower() in heard, (t.text, text, tagged, r)


def test_the_answer_says_the_most_of_the_request_it_can():
    f = D.Frame("remind", {"task": "call mom", "date": "tomorrow", "time": "five p m"})
    line, roles = D.answer(f)
    assert sorted(roles) == ["date", "task", "time"] and "call mom tomorrow at five p m" in line
    line, roles = D.answer(D.Frame("remind", {"task": "call mom"}))
    assert roles == ["task"] and line == "Okay, I'll remind you to call mom."


def test_meaning_reads_slots_and_constants_from_the_template():
    frames = D.meaning("lock the front door and turn off the {device}", "lock the front door and turn off the oven")
    assert [(f.intent, f.values) for f in frames] == [("lock", {"device": "front door"}),
                                                      ("turn-off", {"device": "oven"})]
    assert D.respond(frames) == "Locking the front door. Turning off the oven."


def test_the_answer_follows_the_users_mood():
    frames = D.meaning("tell me a joke", "tell me a joke")
    neutral = D.respond(frames)
    assert "[laugh]" in neutral and "[pause]" in neutral
    for mood, tag in D.FOLLOW.items():
        got = D.respond(frames, mood)
        if tag is None:
            assert got == neutral
            continue
        assert got.startswith(f"[{tag}] ")
        tags = [m.group(1) for m in TAG.finditer(got)]
        assert [x for x in tags if x in DELIVERIES] == [tag]     # the line's own delivery gives way
        assert "laugh" in tags and "pause" in tags                # events stay
    own = D.respond(D.meaning("flip a coin", "flip a coin"), "annoyed")
    assert own == "[apologetic] It's heads!"
    with pytest.raises(D.DialogueError, match="arousal"):
        D.respond(frames, "furious")


def test_splits_keep_templates_and_speakers_apart():
    rng = np.random.default_rng(0)
    train_spk, test_spk = D.speakers_for("train"), D.speakers_for("test")
    assert not {s.variant for s in train_spk} & {s.variant for s in test_spk}
    held = {t.text for t in T.HELD_OUT_TEMPLATES}
    test = [D.sample(rng, "test", test_spk, i) for i in range(60)]
    train = [D.sample(rng, "train", train_spk, i) for i in range(60)]
    assert all(d.template in held for d in test) and not any(d.template in held for d in train)
    moods = {d.arousal for d in train + test}
    assert moods == set(D.AROUSAL)


def test_unknown_intent_is_a_typed_error():
    with pytest.raises(D.DialogueError, match="no response grammar"):
        D.answer(D.Frame("order-pizza", {}))
    with pytest.raises(D.DialogueError, match="no response fits"):
        D.answer(D.Frame("set-timer", {"quant": "five"}))


def test_translations_are_corpus_templates_in_two_languages():
    texts = {t.text for t in T.TEMPLATES}
    pairs = D.translation_pairs()
    assert {lang for _, lang, _ in pairs} == {"es", "de"}
    for t, _, tr in pairs:
        assert t in texts and T.plain(tr) == tr and set(D._ROLE.findall(tr)) <= set(D._ROLE.findall(t) or [])


def test_translation_turns_say_the_request_again_in_another_voice():
    rng = np.random.default_rng(5)
    spk = D.speakers_for("train")
    turns = [D.sample(rng, "train", spk, i, p_translate=1.0) for i in range(30)]
    assert {d.task for d in turns} == {"translate-es", "translate-de"}
    for d in turns:
        lang = d.task[-2:]
        assert d.response_voice.voice == D.LANGUAGE_VOICES[lang]
        for v in d.said_back().values():          # the name is said alike in every language
            assert v in d.request and v in d.response
        want = D.TRANSLATIONS[d.template][lang]
        assert d.response == D._ROLE.sub(lambda m: d.said_back()["contact"], want)
    req, resp = D.render(turns[0])
    assert len(req.audio) > 8000 and len(resp.audio) > 8000
    assert [w for w, _, _ in resp.words] == turns[0].response.split()
    # held-out templates stay held out for translation too
    test = [D.sample(rng, "test", D.speakers_for("test"), i, p_translate=1.0) for i in range(20)]
    held = {t.text for t in T.HELD_OUT_TEMPLATES}
    assert all(d.template in held for d in test)


def test_build_renders_both_sides_and_the_mood_is_heard(tmp_path):
    from workbench.audio import load_audio
    from workbench.tts.prosody import measure
    out = D.build("dev", 4, tmp_path / "dlg", workers=1)
    rows = D.load(out)
    assert len(rows) == 4 and not list(tmp_path.glob(".dlg*"))
    for r in rows:
        for side in ("audio_filepath", "response_audio_filepath"):
            a = load_audio(r[side])
            dur = r["duration" if side == "audio_filepath" else "response_duration"]
            assert abs(len(a) / 16000 - dur) < 0.01 and np.abs(a).max() > 0.01
        for v in r["said_back"].values():
            assert v.lower() in r["response_text"].lower()
        for key, text in (("words", r["text"]), ("response_words", r["response_text"])):
            ws = r[key]
            assert len(ws) == len(text.split()) and all(a < b for _, a, b in ws)
            assert all(b1 <= a2 + 1e-3 for (_, _, b1), (_, a2, _) in zip(ws, ws[1:]))
    # the same requests in two moods: excitement is higher, wider, louder and faster than tiredness (medians over
    # three requests: one F0 track can jump an octave)
    m = {"excited": [], "tired": []}
    for k in range(3):
        d = D.sample(np.random.default_rng(k), "dev", D.speakers_for("dev"))
        for mood in m:
            d.arousal = mood
            req = D.render(d)[0].audio
            m[mood].append(measure(req, n_words=len(d.request.split())))
    med = {mood: {a: float(np.median([x[a] for x in xs])) for a in xs[0]} for mood, xs in m.items()}
    assert med["excited"]["f0_st"] > med["tired"]["f0_st"] + 2
    assert med["excited"]["range_st"] > med["tired"]["range_st"] + 2
    assert med["excited"]["energy_db"] > med["tired"]["energy_db"] + 3
    assert med["excited"]["speech_s"] < med["tired"]["speech_s"]


def test_bad_build_arguments_write_nothing(tmp_path):
    with pytest.raises(D.DialogueError, match="split"):
        D.build("valid", 2, tmp_path / "x")
    with pytest.raises(D.DialogueError, match="at least 1"):
        D.build("train", 0, tmp_path / "x")
    assert not list(tmp_path.iterdir())
