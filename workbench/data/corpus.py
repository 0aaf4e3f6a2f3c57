"""The offline corpus: templates x synthetic speakers, with pauses, fillers, truncations and noise.

Every utterance is planned from its own random generator seeded by (seed, split, index), so the corpus
is identical whatever the number of worker processes, and any single utterance can be re-rendered.
Ground truth (word times, pauses, true end of speech) is exact because the timeline is assembled here.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import pickle
import shutil
import subprocess
import time
import traceback
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..audio import MODEL_SAMPLE_RATE, resample, save_wav
from . import templates as T
from .manifest import DEFAULT_ROOT
from .synth import ESPEAK_RATE, VARIANTS, VOICES, Speaker, speak_piece, speech_bounds, synthesise

SPLITS = ("train", "dev", "test", "test_unseen_engine", "test_unseen_text")
# test_unseen_engine: the test texts spoken by an engine never heard in training (all its voices);
# test_unseen_text: held-out templates (never in training text) spoken by the test speakers.


@dataclass
class CorpusConfig:
    """Plain data: everything that decides the corpus. Stored in corpus.json beside the audio."""
    size: str = "default"
    seed: int = 0
    utterances: dict = field(default_factory=lambda: {"train": 10000, "dev": 500, "test": 500,
                                                      "test_unseen_engine": 300, "test_unseen_text": 300})
    speakers: dict = field(default_factory=lambda: {"train": 160, "dev": 24, "test": 24})   # espeak-ng's
    held_out_variants: dict = field(default_factory=lambda: {"dev": 8, "test": 12})
    rate_wpm: tuple = (130, 200)
    pitch: tuple = (25, 75)
    # share of utterances per engine in train/dev/test (espeak-ng: many voices x variants; the others few voices)
    engines: dict = field(default_factory=lambda: {"espeak": 0.4, "flite": 0.2, "festival": 0.2, "pico": 0.2})
    # voices of the other engines kept out of training (dev and test speak them at their own rates)
    held_out_voices: dict = field(default_factory=lambda: {"flite": ["awb"], "festival": ["ked_diphone"],
                                                           "pico": ["en-GB"]})
    rates_per_voice: dict = field(default_factory=lambda: {"train": 8, "dev": 3, "test": 3, "test_unseen_engine": 8})
    rate_pct: tuple = (80, 125)    # other engines: speed and pitch in percent of the voice's own
    pitch_pct: tuple = (85, 115)
    unseen_engine: str = "piper"
    lead_silence_s: tuple = (0.1, 0.6)
    trail_silence_s: tuple = (0.8, 2.0)
    p_pauses: float = 0.5          # utterances with at least one mid-sentence pause
    pause_ms: tuple = (150, 1200)  # length of each mid-sentence pause
    p_filler: float = 0.25         # of the paused utterances, those with a filler ("um") inside a pause
    p_truncated: float = 0.1       # cut after a prefix ("set a timer for")
    p_noise: float = 0.4
    noise_types: tuple = ("white", "pink", "babble")
    snr_db: tuple = (5, 10, 15, 20)
    heldout_sentences: int = 2000
    # side talk (sidetalk.py): speech not meant for the device, labelled directed: false; a corpus of its own
    side_talk: bool = False
    p_conversational: float = 0.7  # side talk delivered faster and quieter (turned away); the rest like requests
    # open-vocabulary text (size "open"): a file of sentences (repository-relative) spoken instead of the templates,
    # each sentence in one split only (CRC-32: a twentieth dev, a twentieth test); its SHA-1 keys the corpus
    open_text: str | None = None
    open_text_sha1: str | None = None


SIZES = {
    "smoke": dict(utterances={"train": 24, "dev": 8, "test": 8, "test_unseen_engine": 4, "test_unseen_text": 4},
                  speakers={"train": 8, "dev": 3, "test": 3}, heldout_sentences=50),
    "default": {},
    # the templates' speakers, engines, pauses, noise and truncation over sentences beyond the templates
    # (workbench.lm.open_text, SmolLM2): what the recogniser needs to spell words and expect word sequences that
    # no template has
    "open": dict(utterances={"train": 6000, "dev": 300, "test": 300, "test_unseen_engine": 0, "test_unseen_text": 0},
                 heldout_sentences=0, open_text="data/text/open_sentences.txt"),
    "large": dict(utterances={"train": 60000, "dev": 2000, "test": 2000, "test_unseen_engine": 1000,
                              "test_unseen_text": 1000},
                  speakers={"train": 400, "dev": 40, "test": 40}, heldout_sentences=20000),
}


class CorpusError(RuntimeError):
    """A corpus that cannot be built or found."""


def config_for(size: str = "default", seed: int = 0, **overrides) -> CorpusConfig:
    if size not in SIZES:
        raise CorpusError(f"unknown corpus size {size!r}; choose one of {sorted(SIZES)}")
    cfg = CorpusConfig(size=size, seed=seed, **{**SIZES[size], **overrides})
    if cfg.open_text and not cfg.open_text_sha1:
        import hashlib
        path = REPO / cfg.open_text
        if not path.is_file():
            raise CorpusError(f"corpus {size!r} speaks the sentences of {cfg.open_text}, which is missing: write them "
                              f"with `python -m workbench open-text`")
        cfg.open_text_sha1 = hashlib.sha1(path.read_bytes()).hexdigest()[:12]
    return cfg


REPO = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=4)
def open_templates(path: str, split: str) -> list:
    """The sentences of an open-text file that belong to ``split`` (by CRC-32 of the sentence: a twentieth each to
    dev and test, the rest to train), as slot-less templates the corpus plans utterances from."""
    import zlib
    part = {0: "dev", 1: "test"}
    lines = [x.strip() for x in (REPO / path).read_text().splitlines() if x.strip()]
    mine = [x for x in lines if part.get(zlib.crc32(x.encode()) % 20, "train") == split]
    if not mine:
        raise CorpusError(f"{path} has no sentences for split {split!r}")
    return [T.Template("open", x) for x in mine]


def corpus_name(size: str, seed: int) -> str:
    return size if seed == 0 else f"{size}-seed{seed}"


# settings added after corpora were built: they count in the hash only when set, so those corpora keep theirs
_ADDED_LATER = {"side_talk": False, "p_conversational": 0.7, "open_text": None, "open_text_sha1": None}


def config_hash(cfg) -> str:
    """Eight hex digits over every setting of a corpus (a ``CorpusConfig`` or its stored dict)."""
    import hashlib
    d = asdict(cfg) if not isinstance(cfg, dict) else cfg
    d = {k: v for k, v in d.items() if not (k in _ADDED_LATER and v == _ADDED_LATER[k])}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=list).encode()).hexdigest()[:8]


def corpus_folder(cfg: CorpusConfig, root) -> Path:
    """Where a corpus with exactly these settings lives: the size's own name for its defaults, the name plus
    the settings' hash for any override, so a call with other settings never gets another corpus."""
    base = corpus_name(cfg.size, cfg.seed)
    default = config_for(cfg.size, cfg.seed)
    return Path(root) / (base if config_hash(cfg) == config_hash(default) else f"{base}-{config_hash(cfg)}")


# --- speakers ---------------------------------------------------------------------------------------
def make_speakers(cfg: CorpusConfig) -> dict[str, list[Speaker]]:
    """Speakers per split. espeak-ng's variants (timbres) are split first, so a test speaker's voice is never
    heard in training, not even at another rate or pitch; the other engines' held-out voices speak only in
    dev and test; the unseen engine speaks only in ``test_unseen_engine``; ``test_unseen_text`` reuses the
    test speakers."""
    from .engines import ENGINE_CLASSES
    rng = np.random.default_rng([cfg.seed, 7])
    variants = list(rng.permutation(VARIANTS))
    n_test, n_dev = cfg.held_out_variants["test"], cfg.held_out_variants["dev"]
    pools = {"test": variants[:n_test], "dev": variants[n_test:n_test + n_dev], "train": variants[n_test + n_dev:]}
    out = {}
    for split in ("train", "dev", "test"):
        seen, spk = set(), []
        while len(spk) < cfg.speakers[split]:
            s = Speaker(voice=str(rng.choice(VOICES)), variant=str(rng.choice(pools[split])),
                        rate=int(rng.integers(*cfg.rate_wpm)), pitch=int(rng.integers(*cfg.pitch)))
            if s.id not in seen:
                seen.add(s.id)
                spk.append(s)
        for eng in (e for e in cfg.engines if e != "espeak"):
            held = cfg.held_out_voices.get(eng, [])
            voices = [v for v in ENGINE_CLASSES[eng].voices if (v in held) == (split != "train")]
            spk += _rated_speakers(rng, eng, voices, cfg.rates_per_voice[split], cfg)
        out[split] = spk
    out["test_unseen_engine"] = _rated_speakers(rng, cfg.unseen_engine, ENGINE_CLASSES[cfg.unseen_engine].voices,
                                                cfg.rates_per_voice["test_unseen_engine"], cfg)
    out["test_unseen_text"] = out["test"]
    return out


def _rated_speakers(rng, eng: str, voices: list[str], n: int, cfg: CorpusConfig) -> list[Speaker]:
    from .engines import ENGINE_CLASSES
    seen, spk = set(), []
    for v in voices:
        while len([s for s in spk if s.voice == v]) < n:
            pitch = int(rng.integers(*cfg.pitch_pct)) if ENGINE_CLASSES[eng].pitch_control else 100
            s = Speaker(v, "", int(rng.integers(*cfg.rate_pct)), pitch, eng)
            if s.id not in seen:
                seen.add(s.id)
                spk.append(s)
    return spk


def pick_speaker(rng: np.random.Generator, speakers: list[Speaker], cfg: CorpusConfig) -> Speaker:
    """An engine by its share (among those the split has), then one of its speakers."""
    engines = [e for e in cfg.engines if any(s.engine == e for s in speakers)]
    if not engines:
        return speakers[int(rng.integers(len(speakers)))]
    w = np.array([cfg.engines[e] for e in engines], float)
    eng = engines[int(rng.choice(len(engines), p=w / w.sum()))]
    pool = [s for s in speakers if s.engine == eng]
    return pool[int(rng.integers(len(pool)))]


# --- one utterance ----------------------------------------------------------------------------------
def plan_utterance(rng: np.random.Generator, speakers: list[Speaker], cfg: CorpusConfig,
                   templates: list | None = None) -> dict:
    """Decide text, speaker, pauses, truncation and noise; no audio yet."""
    template, marked = T.sample_text(rng, templates or T.AUDIO_TEMPLATES)
    tokens = marked.split()
    words, boundary_kind = [], {}
    for tok in tokens:
        if tok.startswith("<"):
            boundary_kind[len(words) - 1] = tok.strip("<>")   # pause candidate after this word
        else:
            words.append(tok)
    pauses = {}  # after word index -> (seconds, kind, filler or None)
    if len(words) > 1 and rng.random() < cfg.p_pauses:
        for i, kind in boundary_kind.items():
            if rng.random() < 0.6:
                pauses[i] = kind
        if not pauses or rng.random() < 0.4:
            pauses.setdefault(int(rng.integers(len(words) - 1)), "hesitation")
        pauses = {i: [float(rng.uniform(*cfg.pause_ms)) / 1000, kind, None] for i, kind in sorted(pauses.items())}
        if rng.random() < cfg.p_filler:
            i = int(rng.choice(list(pauses)))
            pauses[i][2] = str(rng.choice(T.FILLERS))
            pauses[i][1] = "filler"
    truncate_after = int(rng.integers(0, len(words) - 1)) if len(words) > 2 and rng.random() < cfg.p_truncated else None
    noise = None
    if rng.random() < cfg.p_noise:
        noise = {"type": str(rng.choice(cfg.noise_types)), "snr_db": float(rng.choice(cfg.snr_db))}
    return {
        "template": template, "words": words, "pauses": pauses, "truncate_after": truncate_after,
        "speaker": pick_speaker(rng, speakers, cfg), "noise": noise,
        "lead": float(rng.uniform(*cfg.lead_silence_s)), "trail": float(rng.uniform(*cfg.trail_silence_s)),
        "peak": float(rng.uniform(0.3, 0.9)),
    }


def _silence(seconds: float, sr: int = ESPEAK_RATE) -> np.ndarray:
    return np.zeros(int(round(seconds * sr)), np.float32)


def render_utterance(plan: dict, rng: np.random.Generator, babble_speakers: list[Speaker]) -> tuple[np.ndarray, dict]:
    """Assemble the 16 kHz waveform and its ground truth from a plan."""
    spk: Speaker = plan["speaker"]
    from .engines import ENGINE_CLASSES
    sr = ESPEAK_RATE if spk.engine == "espeak" else MODEL_SAMPLE_RATE
    # engines without word times of their own: a truncation falls on a stretch boundary, so the cut is exact
    cut_between_pieces = spk.engine != "espeak" and not ENGINE_CLASSES[spk.engine].native_word_times
    parts, words_out, pauses_out = [_silence(plan["lead"], sr)], [], []
    t = len(parts[0]) / sr
    run: list[str] = []
    n = len(plan["words"])

    def emit(text_words, filler=False):
        nonlocal t
        wav, times = speak_piece(" ".join(text_words), spk, sr)
        for w, (a, b) in zip(text_words, times):
            words_out.append({"word": w, "start": round(t + a, 4), "end": round(t + b, 4), **({"filler": True} if filler else {})})
        parts.append(wav)
        t += len(wav) / sr

    def pause(seconds, kind):
        nonlocal t
        parts.append(_silence(seconds, sr))
        pauses_out.append({"start": round(t, 4), "end": round(t + len(parts[-1]) / sr, 4), "kind": kind})
        t += len(parts[-1]) / sr

    for i, w in enumerate(plan["words"]):
        run.append(w)
        if cut_between_pieces and i == plan["truncate_after"] and i not in plan["pauses"]:
            emit(run)
            run = []
        elif i in plan["pauses"] and i < n - 1:
            seconds, kind, filler = plan["pauses"][i]
            emit(run)
            run = []
            if filler:
                pause(seconds / 2, kind)
                emit([filler], filler=True)
                pause(seconds / 2, kind)
            else:
                pause(seconds, kind)
    emit(run)
    speech = np.concatenate(parts)

    truncated = plan["truncate_after"] is not None
    full_text = " ".join(w["word"] for w in words_out)
    if truncated:  # cut right after the k-th spoken (non-filler) word
        spoken = [j for j, w in enumerate(words_out) if not w.get("filler")]
        last = spoken[plan["truncate_after"]]
        words_out = words_out[: last + 1]
        end_s = words_out[-1]["end"]
        pauses_out = [p for p in pauses_out if p["end"] <= end_s]
        speech = speech[: int(round(end_s * sr))]
    speech_end = words_out[-1]["end"]
    audio = np.concatenate([speech, _silence(plan["trail"], sr)])
    if sr != MODEL_SAMPLE_RATE:
        audio = resample(audio, sr, MODEL_SAMPLE_RATE)

    if plan["noise"]:
        audio = _add_noise(audio, words_out, plan["noise"], rng, babble_speakers)
    audio *= plan["peak"] / (np.abs(audio).max() + 1e-9)
    audio += rng.normal(0, 3e-5, audio.shape).astype(np.float32)   # quantisation-level dither: no digital zeros

    entry = {
        "duration": round(len(audio) / MODEL_SAMPLE_RATE, 4),
        "text": " ".join(w["word"] for w in words_out),
        "speaker": spk.id, "engine": spk.engine, "domain": plan["template"].domain, "template": plan["template"].text,
        "words": words_out, "speech_start": words_out[0]["start"], "speech_end": speech_end,
        "pauses": pauses_out, "noise": plan["noise"], "truncated": truncated,
    }
    if truncated:
        entry["full_text"] = full_text
    if "directed" in plan:                 # side talk (absent: a request, directed at the device)
        entry["directed"], entry["delivery"] = plan["directed"], plan["delivery"]
    return audio, entry


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f power spectrum by shaping white noise in the frequency domain."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spec / np.sqrt(f), n).astype(np.float32)


def babble(n: int, rng: np.random.Generator, speakers: list[Speaker], talkers: int = 4) -> np.ndarray:
    """Several other speakers of the same split saying other corpus sentences, overlapped and looped."""
    out = np.zeros(n, np.float32)
    for _ in range(talkers):
        _, text = T.sample_text(rng)
        wav, sr, _ = synthesise(T.plain(text), speakers[int(rng.integers(len(speakers)))])
        lo, hi = speech_bounds(wav, sr)
        wav = resample(wav[lo:hi], sr, MODEL_SAMPLE_RATE)
        wav = wav / (np.sqrt(np.mean(wav ** 2)) + 1e-9)
        reps = int(np.ceil((n + len(wav)) / len(wav)))
        start = int(rng.integers(len(wav)))
        out += np.tile(wav, reps)[start:start + n]
    return out


def _add_noise(audio, words, noise, rng, speakers):
    kind = noise["type"]
    if kind == "white":
        nz = rng.standard_normal(len(audio)).astype(np.float32)
    elif kind == "pink":
        nz = pink_noise(len(audio), rng)
    elif kind == "babble":
        nz = babble(len(audio), rng, speakers)
    else:
        raise CorpusError(f"unknown noise type {kind!r}")
    a = int(words[0]["start"] * MODEL_SAMPLE_RATE)
    b = int(words[-1]["end"] * MODEL_SAMPLE_RATE)
    p_speech = np.mean(audio[a:b] ** 2)
    p_noise = np.mean(nz ** 2) + 1e-12
    return audio + nz * np.sqrt(p_speech / (p_noise * 10 ** (noise["snr_db"] / 10)))


# --- building ---------------------------------------------------------------------------------------
_SPLIT_CODE = {s: i for i, s in enumerate(SPLITS)}


# Engines whose output depends on what the process synthesised before: espeak-ng's wave generator carries
# phase and flutter from call to call; piper's ONNX graph draws its noise from a generator seeded once per
# session. An utterance that hears one of them (babble may pick any speaker) is rendered in a forked child.
STATEFUL_ENGINES = frozenset({"espeak", "piper"})


def _plan_job(args) -> tuple[dict, np.random.Generator]:
    _, split, index, cfg, speakers = args
    if cfg.side_talk:
        return _plan_side_talk(split, index, cfg, speakers)
    rng = np.random.default_rng([cfg.seed, _SPLIT_CODE[split], index])
    templates = (open_templates(cfg.open_text, split) if cfg.open_text
                 else T.HELD_OUT_TEMPLATES if split == "test_unseen_text" else None)
    return plan_utterance(rng, speakers, cfg, templates), rng


CONVERSATIONAL_RATE = 1.12    # side talk a little faster than a request to a device ...
CONVERSATIONAL_LEVEL = 0.5    # ... and quieter at the device's microphone (turned to someone else: -6 dB)


def _plan_side_talk(split: str, index: int, cfg: CorpusConfig, speakers) -> tuple[dict, np.random.Generator]:
    """A side-talk utterance by the split's own speakers: train reads the training side-talk templates, dev and
    test only the held-out ones. Most are delivered conversationally (faster, quieter: a difference put in by
    construction, reported as such); the rest exactly as requests are, so that words and eyes must tell."""
    from dataclasses import replace
    from .sidetalk import HELD_OUT_SIDE_TALK, TRAIN_SIDE_TALK
    rng = np.random.default_rng([cfg.seed, _SPLIT_CODE[split], index, 1])
    plan = plan_utterance(rng, speakers, cfg, TRAIN_SIDE_TALK if split == "train" else HELD_OUT_SIDE_TALK)
    plan["truncate_after"] = None
    plan["directed"] = False
    plan["delivery"] = "conversational" if rng.random() < cfg.p_conversational else "request"
    if plan["delivery"] == "conversational":
        spk = plan["speaker"]
        plan["speaker"] = replace(spk, rate=int(round(spk.rate * CONVERSATIONAL_RATE)))
        plan["peak"] *= CONVERSATIONAL_LEVEL
    return plan, rng


def needs_fresh_process(plan: dict) -> bool:
    """Whether rendering this plan touches a synthesiser with history (see STATEFUL_ENGINES)."""
    return plan["speaker"].engine in STATEFUL_ENGINES or (plan["noise"] or {}).get("type") == "babble"


def _render_job(args, planned: tuple[dict, np.random.Generator] | None = None) -> dict:
    out_dir, split, index, cfg, speakers = args
    plan, rng = planned or _plan_job(args)
    audio, entry = render_utterance(plan, rng, speakers)
    uid = f"{split}-{index:06d}"
    rel = f"wav/{split}/{uid}.wav"
    save_wav(Path(out_dir) / rel, audio)
    return {"audio_filepath": rel, "id": uid, "split": split, **entry}


def _init_worker(engines: tuple[str, ...] = ("espeak",)) -> None:
    """Bring a worker to the state every utterance is forked from: libraries imported, every engine started
    and warmed up by one fixed sentence (the same in every worker, so still deterministic), flite's
    lexicon looked up, the forced aligner loaded (one torch thread: workers run side by side)."""
    # SVOX Pico (py-nanotts) mallocs a 2.5 MB arena per request and reads some of it before writing it. glibc
    # serves such a block from fresh zeroed pages (mmap) until a freed one raises its dynamic threshold; then
    # it reuses heap memory holding whatever the last requests left (why its output followed its history).
    # A fixed threshold keeps every large block a fresh mapping, so the arena always starts zeroed.
    _libc().mallopt(-3, 128 * 1024)     # M_MMAP_THRESHOLD (fixing it disables the dynamic threshold)
    import soundfile  # noqa: F401  (imported here once, not in every forked child)
    import torch
    torch.set_num_threads(1)
    from .engines import ENGINE_CLASSES, get_engine
    wav, _ = speak_piece("warm up", Speaker(VOICES[0], VARIANTS[0], 160, 50))
    resample(wav, ESPEAK_RATE, MODEL_SAMPLE_RATE)
    for e in engines:
        if e == "espeak":
            continue
        eng = get_engine(e)
        for v in eng.voices:
            synthesise("warm up", Speaker(v, "", 100, 100, e))
        if e == "flite":
            eng.phone_counts(T.vocabulary())
        if not ENGINE_CLASSES[e].native_word_times:
            from .align import aligner
            aligner()
    import gc
    gc.collect()
    gc.freeze()     # children never walk (and so never copy) the worker's objects: forks cost less


def _libc():
    import ctypes
    import ctypes.util
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def _job(args) -> dict:
    """Render one utterance: in this worker when no synthesiser with history is involved (flite, festival and
    Pico depend on the request alone, see engines.py), else in a child forked from the pristine worker.

    espeak-ng's output depends on what it synthesised before (its wave generator carries phase and
    flutter state from call to call), so an utterance rendered after different predecessors differs by
    a few samples. Forking per utterance gives every utterance the same starting state: the corpus is
    then byte-identical for a given seed, whatever the number of workers and the order of jobs.

    One state is not the worker's own: espeak-ng's Klatt voices (variants such as f5, iven, Andy) draw
    their noise from libc's ``rand()``, and a background thread of a library the worker loaded calls
    ``rand()`` now and then, so the state a child inherits drifts with wall time (measured: the same
    utterance changed four times in a minute). The child seeds it from the utterance's own key.

    Forking costs ~150 ms per utterance on a worker holding torch and the aligner (~4x the rendering itself),
    so only the utterances that need it pay it.
    """
    seed = (args[3].seed * 1_000_003 + _SPLIT_CODE[args[1]] * 100_003 + args[2]) & 0x7FFFFFFF
    planned = _plan_job(args)      # planned once; a forked child inherits it
    failed = f"synthesis of {args[1]}-{args[2]:06d} failed"
    if not needs_fresh_process(planned[0]):
        _libc().srand(seed)
        try:
            return _render_job(args, planned)
        except Exception as e:  # noqa: BLE001 - same typed error as from a child
            raise CorpusError(f"{failed}: {type(e).__name__}: {e}") from e
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            _libc().srand(seed)
            payload = ("ok", _render_job(args, planned))
        except BaseException as e:  # noqa: BLE001 - reported to the parent, which re-raises
            payload = ("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
        with os.fdopen(w, "wb") as f:
            pickle.dump(payload, f)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    if not data:
        raise CorpusError(f"synthesis of {args[1]}-{args[2]:06d} crashed (no result from the child process)")
    status, value = pickle.loads(data)
    if status != "ok":
        raise CorpusError(f"{failed}: {value}")
    return value


def espeak_version() -> str:
    try:
        return subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def build_corpus(size: str = "default", seed: int = 0, root: str | os.PathLike = DEFAULT_ROOT, *,
                 workers: int | None = None, force: bool = False, progress: bool = True, **overrides) -> Path:
    """Synthesise the corpus into ``root/<name>`` and return that path.

    Built in a temporary folder and moved into place at the end, so an interrupted build leaves no
    half corpus behind. An existing corpus is kept unless ``force``.
    """
    from tqdm.auto import tqdm
    from .manifest import entries_to_cutset, write_manifest
    from .engines import ENGINE_CLASSES

    cfg = config_for(size, seed, **overrides)
    root = Path(root)
    final = corpus_folder(cfg, root)
    if final.exists() and (final / "corpus.json").exists() and not force:
        try:
            stored = json.loads((final / "corpus.json").read_text()).get("config")
        except (OSError, json.JSONDecodeError):
            stored = None
        if stored is not None and config_hash(stored) == config_hash(cfg):
            return final
        print(f"[corpus] {final} was built with other settings (or an older version of them): rebuilding it",
              flush=True)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{final.name}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.time()
    try:
        speakers = make_speakers(cfg)
        jobs = []
        for split in SPLITS:
            (tmp / "wav" / split).mkdir(parents=True)
            jobs += [(str(tmp), split, i, cfg, speakers[split]) for i in range(cfg.utterances.get(split, 0))]
        workers = workers or os.cpu_count() or 1
        bar = tqdm(total=len(jobs), desc=f"corpus {final.name}", unit="utt", disable=not progress, mininterval=2)
        entries = []
        # spawn: workers never inherit a used espeak-ng state from this process (see _job)
        engines = tuple(cfg.engines) + (cfg.unseen_engine,)
        with mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(engines,)) as pool:
            for e in pool.imap(_job, jobs, chunksize=8):
                entries.append(e)
                bar.update()
        bar.close()
        stats = {}
        for split in SPLITS:
            part = [e for e in entries if e["split"] == split]
            write_manifest(part, tmp / f"{split}.json")   # NeMo manifest; audio paths relative to this folder
            entries_to_cutset(part, base_dir=tmp, relative_to=tmp).to_file(tmp / f"{split}.cuts.jsonl.gz")
            speech = sum(e["speech_end"] - e["speech_start"] for e in part)
            stats[split] = {"utterances": len(part), "hours": round(sum(e["duration"] for e in part) / 3600, 3),
                            "speech_hours": round(speech / 3600, 3), "speakers": len({e["speaker"] for e in part}),
                            "truncated": sum(e["truncated"] for e in part),
                            "with_pauses": sum(bool(e["pauses"]) for e in part),
                            "noisy": sum(e["noise"] is not None for e in part),
                            "distinct_texts": len({e["text"] for e in part}),
                            "engines": {g: sum(e["engine"] == g for e in part) for g in sorted({e["engine"] for e in part})}}
        _write_heldout_texts(tmp / "texts", cfg)
        meta = {"name": final.name, "config": asdict(cfg), "splits": stats,
                "speakers": {s: [x.id for x in speakers[s]] for s in SPLITS},
                "total_hours": round(sum(s["hours"] for s in stats.values()), 3),
                "build_seconds": round(time.time() - t0, 1), "workers": workers,
                "espeak_ng": espeak_version(), "sample_rate": MODEL_SAMPLE_RATE,
                "word_times": {e: ("synthesiser" if e == "espeak" or ENGINE_CLASSES[e].native_word_times
                                   else "ctc forced alignment (workbench.data.align)") for e in engines}}
        (tmp / "corpus.json").write_text(json.dumps(meta, indent=1))
        from ..files import replace_dir
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _write_heldout_texts(out: Path, cfg: CorpusConfig) -> None:
    """Text only, from templates never used for audio (language models, truncation repair)."""
    out.mkdir(parents=True)
    rng = np.random.default_rng([cfg.seed, 99])
    sentences = {T.plain(T.sample_text(rng, T.HELD_OUT_TEMPLATES)[1]) for _ in range(cfg.heldout_sentences)}
    (out / "heldout_templates.txt").write_text("\n".join(f"{t.domain}\t{t.text}" for t in T.HELD_OUT_TEMPLATES) + "\n")
    (out / "heldout_sentences.txt").write_text("\n".join(sorted(sentences)) + "\n")


def ensure_corpus(size: str = "default", seed: int = 0, root: str | os.PathLike = DEFAULT_ROOT, **kw) -> Path:
    """The corpus folder, built first if it is missing (what notebooks call)."""
    return build_corpus(size, seed, root, **kw)


SIDE_TALK = {"smoke": {"train": 16, "dev": 8, "test": 8}, "default": {"train": 2000, "dev": 300, "test": 500},
             "large": {"train": 10000, "dev": 1000, "test": 1000}}


def side_talk_corpus(size: str = "default", seed: int = 0, root: str | os.PathLike = DEFAULT_ROOT, **kw) -> Path:
    """The side-talk corpus beside a size's corpus (same speakers per split, same pauses and noise; no cut
    requests), built first if missing: look-to-talk's negatives. Its requests are the size's own corpus."""
    n = SIDE_TALK[size] if size in SIDE_TALK else SIDE_TALK["default"]
    utts = {s: n.get(s, 0) for s in SPLITS}
    return build_corpus(size, seed, root, side_talk=True, utterances=utts, p_truncated=0.0, **kw)


def corpus_with_more(split: str, total: int, size: str = "default", seed: int = 0,
                     root: str | os.PathLike = DEFAULT_ROOT, **kw) -> Path:
    """A corpus with the settings of ``size`` whose ``split`` has ``total`` utterances and every other split
    none, built first if missing. Its first utterances are the size's own of that split, byte for byte (each
    utterance is planned from (seed, split, index) and the speakers from the seed alone); the rest are fresh
    sentences by the same speakers. Why: a model trained on the recogniser's output (the reranker) needs its
    errors on speech it was not trained on, in quantity, and test must stay untouched: more dev is that."""
    if split not in ("dev", "train"):
        raise CorpusError(f"only dev or train can be extended, not {split!r}: test speakers stay held out")
    own = config_for(size, seed).utterances.get(split, 0)
    if int(total) <= own:
        raise CorpusError(f"total={total} adds nothing: {size!r} already has {own} {split} utterances")
    counts = {s: (int(total) if s == split else 0) for s in SPLITS}
    return build_corpus(size, seed, root, utterances=counts, **kw)
