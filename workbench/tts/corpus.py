"""The expressive corpus of the assistant's voice: tagged responses rendered by espeak-ng with their ground truth.

Each utterance is a response from ``responses`` (training templates for train and dev, held-out ones for test),
re-styled at random so that every direction is heard in many contexts (``restyle``: the delivery tags replaced by
random ones; ``events``: a random pause, filler or laugh inserted). It is rendered in the target voice
(``render.TARGET``) and analysed into the WORLD parameters the codec also uses (100 frames a second). The ground
truth per utterance: the tagged text cut into ``elements`` (every tag and every word, in order) and the frame where
each element starts: words from espeak-ng's WORD events, a pause from the end of the speech before it, a delivery
tag at its first word (or at the pause it stands before); and the synthesisers' symbols (frontend.py: espeak-ng's
phonemes and the tags) with the frame where each starts. Elements tile the utterance, so a synthesiser's duration targets follow from any tokenizer.
Everything is cached under ``data/cache/tts`` (rendering is deterministic from the seed).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from .frontend import ELEMENT, align
from .render import render_espeak
from .responses import sample
from .styles import DELIVERIES, EVENTS, PAUSE_MS, TAG

CACHE = Path(os.environ.get("WORKBENCH_CACHE") or Path(__file__).resolve().parents[2] / "data" / "cache") / "tts"
_SPLIT = {"train": 0, "dev": 1, "test": 2}


@dataclass(frozen=True)
class ExpressiveConfig:
    restyle: float = 0.5       # share of utterances whose delivery tags are drawn at random
    events: float = 0.4        # share with a random event tag inserted
    seed: int = 0


def restyled(tagged: str, rng: np.random.Generator, cfg: ExpressiveConfig) -> str:
    """A response with random deliveries (and maybe a random event) instead of, or on top of, its own."""
    deliveries = [d for d in DELIVERIES]
    if rng.random() < cfg.restyle:
        words = TAG.sub(lambda m: m.group(0) if m.group(1).lower() in EVENTS else "", tagged).split()
        tagged = f"[{deliveries[int(rng.integers(len(deliveries)))]}] " + " ".join(words)
        if len(words) > 3 and rng.random() < 0.3:      # a second delivery in mid-sentence
            k = int(rng.integers(2, len(words)))
            ws = tagged.split()
            ws.insert(k + 1, f"[{deliveries[int(rng.integers(len(deliveries)))]}]")
            tagged = " ".join(ws)
    if rng.random() < cfg.events:
        ws = tagged.split()
        k = int(rng.integers(1, len(ws) + 1))
        ws.insert(k, f"[{list(EVENTS)[int(rng.integers(len(EVENTS)))]}]")
        tagged = " ".join(ws)
    return tagged


def elements(tagged: str, rendering) -> tuple[list[str], list[float]]:
    """The tagged text's elements (tags and words, in order) and the second each starts at (see module doc)."""
    els = ELEMENT.findall(tagged)
    words = rendering.words
    starts, k = [], 0
    for e in els:
        name = e[1:-1].strip().lower() if e.startswith("[") else None
        if name is None:                                   # a word: the next rendered word
            starts.append(words[k][1])
            k += 1
        elif name in EVENTS and EVENTS[name]:              # a filler or laugh: the words it was spoken as
            starts.append(words[k][1])
            k += len(EVENTS[name].split())
        elif name in PAUSE_MS:                              # a pause: from the end of the speech before it
            starts.append(words[k - 1][2] if k else 0.0)
        else:                                              # a delivery: where its first word starts
            starts.append(words[k][1] if k < len(words) else rendering.duration)
    if k != len(words):
        raise RuntimeError(f"{tagged!r}: {k} of {len(words)} rendered words matched")
    for i in range(len(els) - 2, -1, -1):      # a delivery right before a pause starts where the pause does
        if els[i].startswith("[") and els[i][1:-1].strip().lower() in DELIVERIES:
            starts[i] = min(starts[i], starts[i + 1])
    if any(b < a for a, b in zip(starts, starts[1:])):
        raise RuntimeError(f"{tagged!r}: element times out of order {starts}")
    return els, starts


def _render(args) -> dict:
    split, index, cfg = args
    from ..codec import world
    rng = np.random.default_rng([cfg.seed, _SPLIT[split], index])
    domain, plain, tagged = sample(rng, held_out=split == "test")
    if split != "test":
        tagged = restyled(tagged, rng, cfg)
    r = render_espeak(tagged)
    params = world.analyse(r.audio, r.sample_rate)
    els, starts = elements(tagged, r)
    sym = align(tagged, r)
    frame = lambda ts: np.asarray([min(len(params), int(round(s / world.FRAME_S))) for s in ts], np.int32)  # noqa
    return {"id": f"{split}-{index:05d}", "domain": domain, "plain": plain, "tagged": tagged, "elements": els,
            "element_frames": frame(starts), "symbols": sym.names, "symbol_owner": np.asarray(sym.owner, np.int32),
            "symbol_frames": frame(sym.starts), "params": params}


def build(split: str, n: int, cfg: ExpressiveConfig = ExpressiveConfig(), workers: int = 2, cache: bool = True,
          log=None) -> list[dict]:
    """``n`` rendered utterances of a split (cached)."""
    import torch
    if split not in _SPLIT:
        raise ValueError(f"split must be one of {sorted(_SPLIT)}, got {split!r}")
    key = "-".join(f"{k}{v}" for k, v in asdict(cfg).items())
    f = CACHE / f"expressive-{split}-{n}-{key}-v3.pt"
    if cache and f.is_file():
        return torch.load(f, weights_only=False)
    jobs = [(split, i, cfg) for i in range(n)]
    if workers > 1:
        with get_context("spawn").Pool(workers) as pool:
            data = pool.map(_render, jobs, chunksize=8)
    else:
        data = [_render(j) for j in jobs]
    if cache:
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = f.with_suffix(f".tmp{os.getpid()}")
        torch.save(data, tmp)
        tmp.replace(f)
    return data
