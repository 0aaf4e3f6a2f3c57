"""N-best lists of a corpus split, decoded once by a recogniser and kept on disk.

Why a cache: every reranker (tuned on dev, trained on train, reported on test) reads the same lists, and the
beam search is the slow part; the lists are a pure function of (model file, split manifest, n, beam, context),
so that tuple, hashed, names the file. Lists come from the streaming recogniser's batched path
(``transcribe_batch``: the streams' own encoder frames, one padded beam search), equal to each stream's own.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..events import Hypothesis

CACHE = Path(os.environ.get("WORKBENCH_CACHE") or Path(__file__).resolve().parents[2] / "data" / "cache") / "nbest"


@dataclass
class NBestSet:
    """One set's n-best lists (best acoustic score first) beside their reference texts."""
    name: str
    ids: list[str]
    refs: list[str]
    nbests: list[list[Hypothesis]]
    entries: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.nbests)

    def subset(self, idx) -> "NBestSet":
        idx = list(idx)
        return NBestSet(self.name, [self.ids[i] for i in idx], [self.refs[i] for i in idx],
                        [self.nbests[i] for i in idx], [self.entries[i] for i in idx] if self.entries else [],
                        dict(self.meta))


def decode_nbest(rec, audios, batch: int = 32) -> list[list[Hypothesis]]:
    """Each recording's n-best from ``rec`` (a ``StreamingRecognizer`` with ``nbest`` > 1), ``batch`` streams
    stepped and beam-searched together."""
    from ..asr.streaming import transcribe_batch
    out: list[list[Hypothesis]] = []
    for b in range(0, len(audios), batch):
        out += [ev[-1].nbest for ev in transcribe_batch(rec, list(audios[b:b + batch]))]
    return out


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _key(model_path: Path, manifest: Path, n: int | None, beam: int, context) -> str:
    spec = json.dumps([_sha1(model_path), _sha1(manifest), n, beam, list(context)])
    return hashlib.sha1(spec.encode()).hexdigest()[:16]


def save(ns: NBestSet, path: Path) -> Path:
    """gzip JSON, written to a temporary name and renamed: a killed run leaves no half list."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    items = [{"id": i, "ref": r, "nbest": [[h.text, h.score, list(h.tokens)] for h in nb]}
             for i, r, nb in zip(ns.ids, ns.refs, ns.nbests)]
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with gzip.open(tmp, "wt") as f:
        json.dump({"name": ns.name, "meta": ns.meta, "items": items}, f)
    os.replace(tmp, path)
    return path


def load(path: Path) -> NBestSet:
    with gzip.open(path, "rt") as f:
        d = json.load(f)
    items = d["items"]
    return NBestSet(d["name"], [x["id"] for x in items], [x["ref"] for x in items],
                    [[Hypothesis(t, float(s), list(k)) for t, s, k in x["nbest"]] for x in items], [], d["meta"])


def nbest_set(model_path, corpus, split: str, n: int | None = None, beam: int = 8, context=(70, 13),
              batch: int = 32, cache_dir: Path | None = None, model=None, log=None) -> NBestSet:
    """The first ``n`` utterances of ``corpus``'s ``split`` (all: ``n=None``) decoded with beam ``beam`` at
    attention context ``context`` by the NeMo model at ``model_path`` (``model``: the same, already loaded),
    read from the cache when these inputs were decoded before."""
    from ..asr.streaming import StreamingRecognizer, load_model
    from ..data import open_dataset
    model_path, corpus = Path(model_path), Path(corpus)
    manifest = corpus / f"{split}.json"
    ds = open_dataset(corpus, split)
    idx = list(range(len(ds) if n is None else min(int(n), len(ds))))
    entries = [ds.entries[i] for i in idx]
    path = Path(cache_dir or CACHE) / f"{split}-{_key(model_path, manifest, n, beam, context)}.json.gz"
    if path.exists():
        ns = load(path)
        ns.entries = entries
        return ns
    rec = StreamingRecognizer(model if model is not None else load_model(model_path, device=None),
                              list(context), nbest=beam)
    nbests: list[list[Hypothesis]] = []
    for b in range(0, len(idx), batch):
        nbests += decode_nbest(rec, [ds.audio(i) for i in idx[b:b + batch]], batch)
        if log:
            log(f"{split}: {len(nbests)}/{len(idx)} decoded")
    ns = NBestSet(split, [str(e.get("id", i)) for i, e in zip(idx, entries)], [e["text"] for e in entries], nbests,
                  entries, {"model": str(model_path), "split": split, "n": len(idx), "beam": beam,
                            "context": list(context)})
    save(ns, path)
    return ns
