"""Tagger and synthesiser in tandem: the tagger's directions are selected on what the synthesiser is measured to
realise.

The issue asks that the tags the tagger emits be the ones the LTTS realises, "trained or selected on the LTTS's
measured realisation". This is the selection. ``fidelity`` speaks every delivery tag in front of dev texts (training
templates, never the test's) with the synthesiser and compares what was measured (prosody.realised) with what was
asked (prosody.requested): per tag, the mean cosine between the two vectors over rate, pitch, range, volume and
whisper, each attribute scaled by the spread of the requests across all deliveries so that no attribute's unit
dominates. ``select`` rewrites a tagged text so that a delivery the synthesiser does not realise (fidelity below
the threshold) becomes the realised delivery whose request is nearest, or neutral where neutral is nearer.
``train-tts`` stores the fidelity with the synthesiser (``calibrate``); notebook 10 and ``bench tts`` put the
tagger's output through ``select`` before the LTTS speaks it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .prosody import ATTRIBUTES, measure, realised, requested
from .styles import DELIVERIES, TAG

THRESHOLD = 0.5


def _scales() -> np.ndarray:
    req = np.array([[requested(s)[a] for a in ATTRIBUTES] for s in DELIVERIES.values()])
    return np.maximum(req.std(0), 1e-6)


def _vector(d: dict) -> np.ndarray:
    return np.array([d[a] for a in ATTRIBUTES], float) / _scales()


def from_rows(rows: list[dict]) -> dict:
    """Per delivery tag: the mean cosine between requested and realised change over style rows (``style_rows``:
    each tag in front of a text, measured against the untagged rendering of the same text), with the count."""
    out: dict[str, list[float]] = {}
    for r in rows:
        want = _vector(r["requested"])
        got = np.nan_to_num(_vector(r["realised"]))
        out.setdefault(r["tag"], []).append(float(want @ got / (np.linalg.norm(want) * np.linalg.norm(got) + 1e-9)))
    return {d: {"cosine": round(float(np.mean(v)), 3), "n": len(v)} for d, v in out.items()}


def fidelity(speak, texts: list[str]) -> dict:
    """``from_rows`` for every delivery but neutral in front of ``texts``, spoken by ``speak``."""
    rows = []
    for t in texts:
        try:
            rows += style_rows(speak, [t])
        except ValueError:          # a rendering too short to measure: that text tells nothing
            continue
    return from_rows(rows)


def realised_tags(fid: dict, threshold: float = THRESHOLD) -> list[str]:
    return [d for d, v in fid.items() if v["cosine"] >= threshold]


def substitute(name: str, fid: dict, threshold: float = THRESHOLD) -> str:
    """The delivery to speak for ``name``: itself if realised, else the realised one nearest in request, or neutral
    (a tag the table does not know was never measured realised)."""
    name = name.lower()
    if name not in DELIVERIES or name == "neutral" or fid.get(name, {"cosine": 0.0})["cosine"] >= threshold:
        return name
    want = _vector(requested(DELIVERIES[name]))
    best, dist = "neutral", float(np.linalg.norm(want))
    for d in realised_tags(fid, threshold):
        dd = float(np.linalg.norm(_vector(requested(DELIVERIES[d])) - want))
        if dd < dist:
            best, dist = d, dd
    return best


def select(tagged: str, fid: dict | None, threshold: float = THRESHOLD) -> str:
    """``tagged`` with every delivery the synthesiser does not realise replaced (``substitute``); events and words
    untouched. Without a fidelity table, unchanged."""
    if not fid:
        return tagged
    return TAG.sub(lambda m: f"[{substitute(m.group(1).strip(), fid, threshold)}]", tagged)


def calibrate(folder: str | os.PathLike, n_texts: int = 6, seed: int = 0) -> dict:
    """Measure a saved synthesiser's fidelity on dev texts and store it in its ``tts.json`` (rewritten atomically)."""
    from .ltts import load_synthesiser
    from .responses import sample
    folder = Path(folder)
    syn = load_synthesiser(folder)
    rng = np.random.default_rng([seed, 23])
    texts = [sample(rng, held_out=False)[1] for _ in range(n_texts)]
    fid = fidelity(syn.synthesise, texts)
    f = folder / "tts.json"
    meta = json.loads(f.read_text())
    meta["fidelity"] = {"texts": "dev: training templates", "threshold": THRESHOLD, "tags": fid}
    tmp = f.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(meta, indent=1, default=str))
    tmp.replace(f)
    return fid


def stored(syn) -> dict | None:
    """The fidelity table a synthesiser was calibrated with (``calibrate``), if any."""
    return (getattr(syn, "meta", {}) or {}).get("fidelity", {}).get("tags")


def agreement(tagged: list[str], dev_fid: dict | None, test_fid: dict, threshold: float = THRESHOLD) -> dict:
    """Of the delivery directions in ``tagged`` (the tagger's output), the share the synthesiser realises on held-out
    texts (``test_fid``), as written and after ``select`` with the fidelity measured on dev (``dev_fid``)."""
    from ..stats import rate_ci
    ok = set(realised_tags(test_fid, threshold))
    out = {}
    for key, texts in (("as_written", tagged), ("selected", [select(t, dev_fid, threshold) for t in tagged])):
        names = [m.group(1).strip().lower() for t in texts for m in TAG.finditer(t)]
        names = [n for n in names if n in DELIVERIES and n != "neutral"]
        out[key] = rate_ci(sum(n in ok for n in names), len(names))
    out["changed"] = sum(select(t, dev_fid, threshold) != t for t in tagged)
    return out


def style_rows(speak, texts: list[str], deliveries=None) -> list[dict]:
    """Every delivery in front of every text, measured against the untagged rendering of the same text."""
    rows = []
    for t in texts:
        neutral = measure(speak(t))
        for d in deliveries or [d for d in DELIVERIES if d != "neutral"]:
            rows.append({"text": t, "tag": d, "requested": requested(DELIVERIES[d]),
                         "realised": realised(measure(speak(f"[{d}] {t}")), neutral)})
    return rows
