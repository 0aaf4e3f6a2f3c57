"""workbench.data: texts, speakers, the synthesised corpus and its ground truth, and the ways data comes in."""
import json
import time

import numpy as np
import pytest

from workbench.data import (SPLITS, CorpusError, DatasetError, build_corpus, config_for, make_speakers, open_dataset,
                            read_manifest)
from workbench.data import templates as T
from workbench.data.synth import Speaker, speak_piece

from conftest import FIXTURES


def rms_db(x):
    return 10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2) + 1e-20)


# --- texts -------------------------------------------------------------------------------------------
def test_templates_give_thousands_of_distinct_sentences():
    rng = np.random.default_rng(0)
    texts = {T.plain(T.sample_text(rng)[1]) for _ in range(20000)}
    assert len(texts) > 5000
    assert all(t == t.lower() and not any(c.isdigit() for c in t) for t in texts)


def test_held_out_templates_are_disjoint_and_text_only(smoke_corpus):
    assert not set(T.HELD_OUT_TEMPLATES) & set(T.AUDIO_TEMPLATES)
    held = {t.text for t in T.HELD_OUT_TEMPLATES}
    assert not any(e["template"] in held for e in open_dataset(smoke_corpus))
    sentences = (smoke_corpus / "texts" / "heldout_sentences.txt").read_text().split("\n")
    assert len([s for s in sentences if s]) >= 20


@pytest.mark.parametrize("n,words", [(0, "zero"), (13, "thirteen"), (40, "forty"), (57, "fifty seven"),
                                     (100, "one hundred")])
def test_number_words(n, words):
    assert T.number_words(n) == words


# --- speakers ----------------------------------------------------------------------------------------
def test_speakers_split_by_timbre():
    spk = make_speakers(config_for("default"))
    espeak = {s: [x for x in v if x.engine == "espeak"] for s, v in spk.items()}
    variants = {s: {x.variant for x in v} for s, v in espeak.items()}
    assert not variants["test"] & variants["train"] and not variants["dev"] & variants["train"]
    assert not variants["test"] & variants["dev"]
    assert len(espeak["train"]) == 160 and len({x.id for x in spk["train"]}) == len(spk["train"])
    for s in (spk["test"][0], spk["test"][-1], spk["test_unseen_engine"][0]):
        assert Speaker.from_id(s.id) == s


def test_other_engines_split_by_voice_and_one_engine_is_never_heard_in_training():
    cfg = config_for("default")
    spk = make_speakers(cfg)
    voices = {s: {(x.engine, x.voice) for x in v if x.engine != "espeak"} for s, v in spk.items()}
    assert {e for e, _ in voices["train"]} == {"flite", "festival", "pico"}
    assert not voices["train"] & voices["test"] and not voices["train"] & voices["dev"]
    assert {x.engine for x in spk["test_unseen_engine"]} == {cfg.unseen_engine}
    assert not any(x.engine == cfg.unseen_engine for s in ("train", "dev", "test") for x in spk[s])


def test_synthesis_word_times_cover_the_speech():
    wav, times = speak_piece("turn on the kitchen lights", Speaker("en-us", "m3", 170, 50))
    assert len(times) == 5
    starts = [a for a, _ in times]
    assert starts == sorted(starts) and all(b > a for a, b in times), times
    assert times[-1][1] == pytest.approx(len(wav) / 22050)


@pytest.mark.parametrize("engine,voice", [("flite", "slt"), ("festival", "kal_diphone"), ("pico", "en-US"),
                                          ("piper", "joe"), ("kokoro", "jm_kumo")])
def test_every_engine_speaks_with_word_times(engine, voice):
    from workbench.data.synth import synthesise
    text = "please turn on the kitchen lights"
    wav, sr, native = synthesise(text, Speaker(voice, "", 100, 100, engine))
    assert sr >= 16000 and len(wav) > 0.8 * sr and np.abs(wav).max() > 0.05
    if engine in ("flite", "festival"):       # their own word times, not the aligner's
        assert native is not None and len(native) == 6 and native == sorted(native)
    piece, times = speak_piece(text, Speaker(voice, "", 100, 100, engine))
    starts = [a for a, _ in times]
    assert len(times) == 6 and starts == sorted(starts) and starts[0] == 0
    assert times[-1][1] == pytest.approx(len(piece) / 16000, abs=1e-3)


def test_kokoro_speaks_english_that_whisper_base_understands():
    """Kokoro's packages are Japanese voices; through misaki's English phonemes they must speak English."""
    import jiwer
    from workbench.asr.peers import load_whisper
    from workbench.asr.scoring import normalize
    from workbench.audio import resample
    from workbench.data.engines import get_engine
    text = "could you start a timer for fifty three minutes"
    wav, sr, _ = get_engine("kokoro").speak(text, "jf_alpha", 100, 100)
    segs, _ = load_whisper("base", cpu_threads=2).transcribe(resample(wav, sr, 16000), language="en", beam_size=1,
                                                            temperature=0.0)
    heard = " ".join(s.text for s in segs)
    assert jiwer.wer(normalize(text), normalize(heard)) <= 0.2, heard
    from workbench.data.engines import EngineUnavailableError
    with pytest.raises(EngineUnavailableError, match="no Kokoro voice"):
        get_engine("kokoro").speak(text, "af_heart", 100, 100)


def test_forced_alignment_lands_near_espeak_word_starts():
    """The aligner against espeak-ng's own word times: close enough to cut a truncation (CTC spikes lag
    the onset by about an encoder frame or two); a broken alignment is off by whole words."""
    from workbench.audio import resample
    from workbench.data.align import aligner
    errs = []
    for variant, text in (("m1", "add milk eggs and bread to my shopping list"),
                          ("f2", "set the kitchen temperature to twenty one degrees")):
        wav, truth = speak_piece(text, Speaker("en-us", variant, 160, 50))
        est = aligner().word_times(resample(wav, 22050, 16000), text.split())
        errs += [abs(a[0] - b[0]) for a, b in zip(est[1:], truth[1:])]
    assert np.median(errs) < 0.25, errs


def test_speech_too_fast_for_the_aligner_shares_the_audio_by_word_length():
    # 0.3 s cannot hold these words' tokens in CTC frames: the words share it by their letters, in order
    from workbench.data.align import aligner
    words = "did you turn off the air conditioner in the upstairs bathroom".split()
    times = aligner().word_times(np.random.default_rng(0).normal(0, 0.1, 4800).astype(np.float32), words)
    assert len(times) == len(words) and times[0][0] == 0.0 and times[-1][1] == pytest.approx(0.3)
    assert all(a[1] == pytest.approx(b[0]) for a, b in zip(times, times[1:]))
    assert times[words.index("conditioner")][1] - times[words.index("conditioner")][0] > times[0][1] - times[0][0]

# --- the corpus --------------------------------------------------------------------------------------
def test_smoke_corpus_layout_and_split_by_speaker(smoke_corpus):
    meta = json.loads((smoke_corpus / "corpus.json").read_text())
    for split in SPLITS:
        assert (smoke_corpus / f"{split}.json").is_file() and (smoke_corpus / f"{split}.cuts.jsonl.gz").is_file()
        assert meta["splits"][split]["utterances"] == len(open_dataset(smoke_corpus, split))
    spk = {s: set(open_dataset(smoke_corpus, s).speakers) for s in SPLITS}
    assert not spk["test"] & spk["train"] and not spk["dev"] & spk["train"]
    assert not spk["test_unseen_engine"] & (spk["train"] | spk["dev"] | spk["test"])
    assert {e["engine"] for e in open_dataset(smoke_corpus, "test_unseen_engine")} == {"piper"}
    assert len({e["engine"] for e in open_dataset(smoke_corpus, "train")}) >= 3


def test_unseen_text_split_speaks_only_held_out_templates(smoke_corpus):
    held = {t.text for t in T.HELD_OUT_TEMPLATES}
    unseen = open_dataset(smoke_corpus, "test_unseen_text").entries
    assert unseen and all(e["template"] in held for e in unseen)
    train_texts = {e["text"] for e in open_dataset(smoke_corpus, "train")}
    assert not any(e["text"] in train_texts for e in unseen)


def test_manifest_lines_are_nemo_compatible(smoke_corpus):
    for line in (smoke_corpus / "train.json").read_text().splitlines():
        e = json.loads(line)
        assert not e["audio_filepath"].startswith("/")            # relative: the corpus can move
        assert (smoke_corpus / e["audio_filepath"]).is_file()
        assert isinstance(e["duration"], float) and e["text"]


def test_ground_truth_matches_the_audio(smoke_corpus):
    """Words are ordered and inside the audio; the audio really is loud inside words and near-silent
    after the true end of speech and inside pauses (for clean utterances)."""
    ds = open_dataset(smoke_corpus)
    checked_pause = 0
    for i, e in enumerate(ds):
        words = e["words"]
        assert [w["word"] for w in words] == e["text"].split()
        assert all(a["end"] <= b["start"] + 1e-4 for a, b in zip(words, words[1:]))
        assert 0 < e["speech_start"] < e["speech_end"] <= e["duration"] - 0.75
        assert e["speech_end"] == words[-1]["end"]
        if e["noise"] is not None:
            continue
        x = ds.audio(i)
        sr = 16000
        speech = x[int(e["speech_start"] * sr):int(e["speech_end"] * sr)]
        tail = x[int((e["speech_end"] + 0.05) * sr):]
        assert rms_db(speech) - rms_db(tail) > 50, e["id"]
        for p in e["pauses"]:
            if p["end"] - p["start"] > 0.1:
                gap = x[int((p["start"] + 0.02) * sr):int((p["end"] - 0.02) * sr)]
                assert rms_db(speech) - rms_db(gap) > 50, (e["id"], p)
                checked_pause += 1
    assert checked_pause > 0


def test_noise_is_mixed_at_the_labelled_snr(smoke_corpus):
    ds = open_dataset(smoke_corpus)
    noisy = [i for i, e in enumerate(ds) if e["noise"] and e["noise"]["type"] in ("white", "pink")]
    assert noisy
    for i in noisy:
        e, x = ds[i], ds.audio(i).astype(np.float64)
        sr = 16000
        a, b = int(e["speech_start"] * sr), int(e["speech_end"] * sr)
        noise_power = np.mean(x[b + sr // 10:] ** 2)            # trailing silence holds only noise
        speech_power = np.mean(x[a:b] ** 2) - noise_power
        snr = 10 * np.log10(speech_power / noise_power)
        assert abs(snr - e["noise"]["snr_db"]) < 1.5, (e["id"], snr, e["noise"])


def test_truncated_utterances_are_prefixes(smoke_corpus):
    trunc = [e for e in open_dataset(smoke_corpus) if e["truncated"]]
    assert trunc
    for e in trunc:
        assert e["full_text"].startswith(e["text"] + " ")
        assert e["duration"] - e["speech_end"] >= 0.75


def test_build_is_deterministic_and_independent_of_workers(tmp_path):
    a = build_corpus("smoke", seed=3, root=tmp_path / "a", workers=1, progress=False)
    b = build_corpus("smoke", seed=3, root=tmp_path / "b", workers=2, progress=False)
    for split in ("train", "test", "test_unseen_engine"):
        assert (a / f"{split}.json").read_text() == (b / f"{split}.json").read_text()
    from workbench.data.corpus import SPLITS
    for split in SPLITS:   # every engine (piper samples noise, seeded; espeak-ng's Klatt voices draw on libc rand())
        n = json.loads((a / "corpus.json").read_text())["splits"][split]["utterances"]
        assert n > 0 and len(list((a / "wav" / split).glob("*.wav"))) == n
        for wa in (a / "wav" / split).glob("*.wav"):
            assert wa.read_bytes() == (b / "wav" / split / wa.name).read_bytes(), wa.name
    c = build_corpus("smoke", seed=4, root=tmp_path / "a", workers=2, progress=False)
    assert (c / "test.json").read_text() != (a / "test.json").read_text()


def test_more_dev_begins_with_the_dev_split_byte_for_byte(smoke_corpus, corpus_root):
    """The reranker's training speech: the dev split extended with fresh sentences by the same speakers, its
    first utterances the size's own dev, and nothing of test."""
    from workbench.data import corpus_with_more
    more = corpus_with_more("dev", 12, "smoke", root=corpus_root)
    assert more != smoke_corpus and more.parent == smoke_corpus.parent
    own, ext = open_dataset(smoke_corpus, "dev"), open_dataset(more, "dev")
    assert len(own) == 8 and len(ext) == 12
    for i in range(8):
        assert (more / ext.entries[i]["audio_filepath"]).read_bytes() == (smoke_corpus / own.entries[i]["audio_filepath"]).read_bytes()
    assert {e["speaker"] for e in ext.entries} <= {s.id for s in make_speakers(config_for("smoke"))["dev"]}
    assert [e["text"] for e in ext.entries[8:]] != [e["text"] for e in own.entries[:4]]
    meta = json.loads((more / "corpus.json").read_text())["splits"]
    assert all(meta[s]["utterances"] == 0 for s in SPLITS if s != "dev")
    with pytest.raises(CorpusError, match="test speakers"):
        corpus_with_more("test", 20, "smoke", root=corpus_root)
    with pytest.raises(CorpusError, match="adds nothing"):
        corpus_with_more("dev", 8, "smoke", root=corpus_root)


def test_existing_corpus_is_reused(smoke_corpus, corpus_root):
    before = (smoke_corpus / "corpus.json").stat().st_mtime_ns
    t0 = time.time()
    assert build_corpus("smoke", root=corpus_root) == smoke_corpus
    assert time.time() - t0 < 1 and (smoke_corpus / "corpus.json").stat().st_mtime_ns == before


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    from workbench.data import corpus as C

    def interrupted(*a, **k):
        raise KeyboardInterrupt("simulated interrupt after synthesis, while writing")
    monkeypatch.setattr(C, "_write_heldout_texts", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_corpus("smoke", root=tmp_path, workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_synthesis_error_is_reported_with_the_utterance(tmp_path, monkeypatch):
    from workbench.data import corpus as C
    monkeypatch.setattr(C, "VOICES", ["xx-nonexistent"])   # make_speakers runs here, synthesis in workers
    with pytest.raises(C.CorpusError, match=r"train-\d{6}.*no voice"):
        build_corpus("smoke", root=tmp_path, workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_unknown_size():
    with pytest.raises(CorpusError, match="unknown corpus size"):
        config_for("huge")


# --- other data through the same API ------------------------------------------------------------------
def test_user_manifest_and_cutset_fixture():
    d = FIXTURES / "user_data"
    m = open_dataset(d / "manifest.json")
    c = open_dataset(d / "cuts.jsonl")
    assert len(m) == len(c) == 2
    assert [e["text"] for e in m] == [e["text"] for e in c]
    assert m[0]["audio_filepath"] == c[0]["audio_filepath"]
    x = m.audio(0)                                  # 22.05 kHz on disk -> 16 kHz
    assert x.dtype == np.float32 and abs(len(x) / 16000 - m[0]["duration"]) < 0.01
    cuts = m.to_cutset()
    assert cuts[0].recording.sampling_rate == 22050
    assert abs(cuts[0].load_audio().shape[1] / 22050 - m[0]["duration"]) < 0.01


def test_corpus_roundtrips_through_lhotse(smoke_corpus, tmp_path):
    ds = open_dataset(smoke_corpus, "test")
    via_cuts = open_dataset(smoke_corpus / "test.cuts.jsonl.gz")
    assert ds.entries == via_cuts.entries
    path = tmp_path / "again.jsonl.gz"
    ds.to_cutset().to_file(path)
    assert open_dataset(path).entries == ds.entries


@pytest.mark.parametrize("content,match", [('{"audio_filepath": "a.wav", "text": "hi"}\n', r"line.*missing|:1: missing"),
                                           ('{"audio_filepath": "a.wav", \n', r":1: not valid JSON")])
def test_bad_manifest_names_the_line(tmp_path, content, match):
    p = tmp_path / "m.json"
    p.write_text(content)
    with pytest.raises(DatasetError, match=match):
        read_manifest(p)


def test_missing_sources(tmp_path):
    with pytest.raises(DatasetError, match="no corpus"):
        open_dataset(tmp_path / "nothing.json")
    with pytest.raises(DatasetError, match="not a workbench corpus"):
        open_dataset(tmp_path)


def test_public_corpus_offline_fails_fast(tmp_path, monkeypatch):
    from workbench.data import CorpusUnavailableError
    from workbench.data import dataset as D
    monkeypatch.chdir(tmp_path)
    t0 = time.time()
    assert D.reachable("https://corpus.example.invalid/x.tar.gz", timeout=2.0) is False   # never resolves
    assert time.time() - t0 < 5
    monkeypatch.setattr(D, "reachable", lambda *a, **k: False)
    with pytest.raises(CorpusUnavailableError, match="openslr"):
        open_dataset("librispeech:dev-clean")
    with pytest.raises(CorpusUnavailableError, match="SLURP"):
        open_dataset("slurp:devel")


def test_replace_dir_keeps_the_old_folder_until_the_new_one_is_in(tmp_path, monkeypatch):
    from pathlib import Path
    from workbench.files import replace_dir
    final, new = tmp_path / "model", tmp_path / ".model.tmp"
    final.mkdir()
    (final / "model.nemo").write_text("old")
    new.mkdir()
    (new / "model.nemo").write_text("new")
    real_rename = Path.rename

    def failing(self, target):          # the swap itself fails (disk full, a crash ...)
        if self == new:
            raise OSError("no space left")
        return real_rename(self, target)
    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(OSError):
        replace_dir(new, final)
    assert (final / "model.nemo").read_text() == "old", "the old export is back in place"
    monkeypatch.setattr(Path, "rename", real_rename)
    replace_dir(new, final)
    assert (final / "model.nemo").read_text() == "new" and not new.exists()
    assert not list(tmp_path.glob(".model.old-*"))


def test_open_dataset_split_on_a_manifest_without_splits_is_an_error(tmp_path, smoke_corpus):
    import json
    from workbench.data import DatasetError, open_dataset
    entries = open_dataset(smoke_corpus, "test").entries[:2]
    m = tmp_path / "mine.json"
    m.write_text("".join(json.dumps({k: v for k, v in e.items() if k != "split"}) + "\n" for e in entries))
    assert len(open_dataset(m)) == 2
    with pytest.raises(DatasetError, match="no splits"):
        open_dataset(m, split="test")
    m2 = tmp_path / "with_splits.json"
    m2.write_text("".join(json.dumps(e) + "\n" for e in entries))
    with pytest.raises(DatasetError, match=r"no utterance of split 'dev'; its splits are \['test'\]"):
        open_dataset(m2, split="dev")


def test_rooms_that_need_ground_truth_name_the_missing_field(tmp_path, smoke_corpus, tiny_model):
    import json
    from workbench.asr.streaming import StreamingRecognizer
    from workbench.data import MissingFieldError, open_dataset
    from workbench.endpoint import compute_signals
    ds = open_dataset(smoke_corpus, "test")
    plain = [{k: v for k, v in e.items() if k not in ("words", "speech_end")} for e in ds.entries[:2]]
    m = tmp_path / "plain.json"
    m.write_text("".join(json.dumps(e) + "\n" for e in plain))
    mine = open_dataset(m)
    assert mine.audio(0).shape == ds.audio(0).shape              # rooms that need only audio and text work
    rec = StreamingRecognizer(tiny_model, [70, 1])
    with pytest.raises(MissingFieldError, match="'speech_end'"):
        compute_signals(rec, mine.entries, [mine.audio(0), mine.audio(1)])
    from workbench.batching.simulation import load_utterances
    with pytest.raises(MissingFieldError, match="'speech_end'"):
        load_utterances(str(m), None, 2)


def test_a_corpus_is_keyed_by_all_of_its_settings(tmp_path):
    from workbench.data import build_corpus
    from workbench.data.corpus import config_hash
    import json
    a = build_corpus("smoke", seed=0, root=tmp_path, progress=False)
    b = build_corpus("smoke", seed=0, root=tmp_path, progress=False, utterances={"train": 4, "dev": 2, "test": 2})
    assert a != b and a.name == "smoke" and b.name.startswith("smoke-")
    assert json.loads((b / "corpus.json").read_text())["config"]["utterances"]["train"] == 4
    assert build_corpus("smoke", seed=0, root=tmp_path, progress=False) == a        # the same settings: kept
    # a folder built with other settings under the default name is not returned as if it were the default
    meta = json.loads((a / "corpus.json").read_text())
    meta["config"]["utterances"]["train"] = 999
    (a / "corpus.json").write_text(json.dumps(meta))
    again = build_corpus("smoke", seed=0, root=tmp_path, progress=False)
    assert config_hash(json.loads((again / "corpus.json").read_text())["config"]) != config_hash(meta["config"])


def test_only_utterances_with_a_stateful_engine_are_forked():
    """espeak-ng and piper carry state between requests, and babble may pick any speaker: those utterances
    are rendered in a fresh child; the others in the worker (the byte-identity test above checks both paths)."""
    from workbench.data.corpus import needs_fresh_process, plan_utterance, config_for, make_speakers
    cfg = config_for("smoke")
    spk = make_speakers(cfg)
    seen = set()
    for i in range(200):
        plan = plan_utterance(np.random.default_rng([0, i]), spk["train"], cfg)
        eng, noise = plan["speaker"].engine, (plan["noise"] or {}).get("type")
        assert needs_fresh_process(plan) == (eng == "espeak" or noise == "babble")
        seen.add(needs_fresh_process(plan))
    assert seen == {True, False}
    piper = plan_utterance(np.random.default_rng(1), spk["test_unseen_engine"], cfg)
    assert piper["speaker"].engine == "piper" and needs_fresh_process(piper)


def test_a_word_whose_pieces_get_no_span_still_gets_its_time():
    """Open text (SmolLM2's sentences) has letters the templates' tokenizer lacks: their unknown piece (id 0)
    merges away, and the aligner once failed on the word after it (KeyError, corpus size 'open', train-001069)."""
    words = "hi i'm alex a science teacher and i'm not sure what you're talking about but i'm happy".split()
    wav, times = speak_piece(" ".join(words), Speaker("en-US", "", 111, 110, "pico"), 16000)
    assert len(times) == len(words)
    assert all(a <= b for a, b in times) and all(b1 <= a2 for (_, b1), (a2, _) in zip(times, times[1:]))
    assert times[-1][1] == pytest.approx(len(wav) / 16000, abs=1e-3)
