"""The training ledger of the shipped recogniser: every run, what it cost and what it bought.

Why: on two cores no single run is enough, so compute must compound. Each run starts from an earlier one
(``parent``), records its own steps and CPU-hours and the dev WER per split of what it exported, and says what
changed. Cumulative compute follows the parent chain, so the curve of dev WER against cumulative CPU-hours shows
whether the next hour should go to more steps, other data or a bigger model.

``ledger.json`` lives beside the shipped model (``data/models/asr_small/ledger.json``) and is committed with it.
Runs whose export was not shipped are kept too (``shipped: false``): a curve needs its failures.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from ..files import write_text_atomic

LEDGER_NAME = "ledger.json"
REQUIRED = ("id", "steps", "cpu_hours", "changed")     # and dev_wer (recognisers) or dev_metrics (other models)


class LedgerError(ValueError):
    """A ledger file or entry that cannot be read or appended (the message says what is wrong)."""


def sha1_of(path: str | os.PathLike) -> str:
    """SHA-1 of a model file: how runs name the model they started from and the one they exported."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (the data loader's workers):
    CPU-hours, not wall hours, so a run that shared the cores is not charged for the other job."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def read(path: str | os.PathLike) -> dict:
    """The ledger at ``path`` ({"model", "runs": [...]}); an absent file is an empty ledger."""
    path = Path(path)
    if not path.exists():
        return {"model": path.parent.name, "runs": []}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise LedgerError(f"{path}: not valid JSON ({e}); restore it from git before training again") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise LedgerError(f"{path}: a ledger is an object with a 'runs' list")
    return data


def find(runs: list[dict], run_id: str | None) -> dict | None:
    return next((r for r in runs if r["id"] == run_id), None) if run_id else None


def parent_of(runs: list[dict], model_sha1: str | None) -> dict | None:
    """The latest run that exported the model with this SHA-1 (where a new run's weights came from)."""
    hits = [r for r in runs if model_sha1 and r.get("model_sha1") == model_sha1]
    return hits[-1] if hits else None


def lineage(runs: list[dict], run_id: str | None) -> list[dict]:
    """The runs from the first ancestor to ``run_id``, in order (a run's weights came from the one before)."""
    chain, seen = [], set()
    r = find(runs, run_id)
    while r is not None and r["id"] not in seen:
        chain.append(r)
        seen.add(r["id"])
        r = find(runs, r.get("parent"))
    return chain[::-1]


def append(path: str | os.PathLike, run: dict) -> dict:
    """Add ``run`` to the ledger (written whole). Fills ``cumulative_steps`` and ``cumulative_cpu_hours`` from
    its parent; returns the stored entry."""
    missing = [k for k in REQUIRED if k not in run]
    if missing:
        raise LedgerError(f"a ledger run needs {', '.join(REQUIRED)}; missing {', '.join(missing)}")
    if not isinstance(run.get("dev_wer", run.get("dev_metrics")), dict):
        raise LedgerError("a ledger run needs dev_wer ({split: {'wer', 'ci95', 'n'}}) or dev_metrics ({name: value})")
    path = Path(path)
    data = read(path)
    if find(data["runs"], run["id"]):
        raise LedgerError(f"{path}: run id {run['id']!r} is already in the ledger")
    parent = find(data["runs"], run.get("parent"))
    if run.get("parent") and parent is None:
        raise LedgerError(f"{path}: parent run {run['parent']!r} is not in the ledger")
    entry = dict(run)
    entry["cumulative_steps"] = int(run["steps"]) + (parent["cumulative_steps"] if parent else 0)
    entry["cumulative_cpu_hours"] = round(float(run["cpu_hours"]) + (parent["cumulative_cpu_hours"] if parent else 0), 3)
    entry.setdefault("date", time.strftime("%Y-%m-%d %H:%M"))
    data["runs"].append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")
    return entry


def mark_shipped(path: str | os.PathLike, run_id: str, export: str) -> dict:
    """Record that ``run_id``'s export is now the shipped model (its folder ``export``): written whole."""
    path = Path(path)
    data = read(path)
    run = find(data["runs"], run_id)
    if run is None:
        raise LedgerError(f"{path}: no run {run_id!r} to mark shipped")
    run["shipped"], run["shipped_as"] = True, export
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")
    return run


def next_id(path: str | os.PathLike) -> str:
    runs = read(path)["runs"]
    return f"r{len(runs) + 1:03d}"


def main_line(data: dict) -> list[dict]:
    """The lineage of the last shipped run (else of the last run): the runs the shipped weights went through."""
    runs = data["runs"]
    shipped = [r for r in runs if r.get("shipped")]
    return lineage(runs, (shipped or runs or [{"id": None}])[-1]["id"])


def curve(data: dict, run_id: str | None = None) -> dict[str, list[dict]]:
    """Dev WER against cumulative CPU-hours per split, along the lineage of ``run_id`` (default: the main
    line, ``main_line``): {split: [{"cpu_hours", "wer", "ci95", "run"}...]}."""
    out: dict[str, list[dict]] = {}
    for r in (lineage(data["runs"], run_id) if run_id else main_line(data)):
        for split, w in r.get("dev_wer", {}).items():
            out.setdefault(split, []).append({"cpu_hours": r["cumulative_cpu_hours"], "wer": w["wer"],
                                              "ci95": w.get("ci95"), "run": r["id"]})
    return out


def lines(data: dict) -> list[list[dict]]:
    """Every line of the ledger: the lineage of each run no later run started from (a design started from
    scratch or from pretrained weights is its own line), the shipped model's line first."""
    runs = data["runs"]
    parents = {r.get("parent") for r in runs}
    leaves = [r for r in runs if r["id"] not in parents]
    main = main_line(data)
    out = [main] if main else []
    out += [lineage(runs, r["id"]) for r in leaves if not main or r["id"] != main[-1]["id"]]
    return out


def plot_curve(data: dict, ax=None, title: str | None = None):
    """Dev WER (95 % interval) against cumulative CPU-hours: one colour per dev split, one line style per line
    of the ledger (solid: the shipped model's line; dashed, square markers: other designs or branches)."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(8.5, 4.8))
    colours: dict[str, str] = {}
    for i, line in enumerate(lines(data)):
        pts: dict[str, list[dict]] = {}
        for r in line:
            for split, w in r.get("dev_wer", {}).items():
                pts.setdefault(split, []).append({"x": r["cumulative_cpu_hours"], "wer": w["wer"], "ci95": w.get("ci95")})
        name = f"{line[0]['id']}..{line[-1]['id']} ({line[-1].get('profile', '?')})"
        for split, ps in pts.items():
            xs, ys = [p["x"] for p in ps], [100 * p["wer"] for p in ps]
            err = [[100 * (p["wer"] - p["ci95"][0]) if p["ci95"] else 0 for p in ps],
                   [100 * (p["ci95"][1] - p["wer"]) if p["ci95"] else 0 for p in ps]]
            logged = "logged" in split           # history, not comparable
            style = {"ls": "--" if (i or logged) else "-", "marker": "s" if i else "o"}
            if logged:
                style["color"] = "0.6"
            elif split in colours:
                style["color"] = colours[split]
            h = ax.errorbar(xs, ys, yerr=err, capsize=3, label=f"{split}: {name}", **style)
            colours.setdefault(split, h[0].get_color())
    ax.set_xlabel("cumulative CPU-hours of training (2-core CPU)")
    ax.set_ylabel("dev WER (%)")
    ax.set_ylim(bottom=0)
    ax.set_title(title or f"{data.get('model', 'ASR')}: dev WER against training compute")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return ax


DEV_SETS = ("dev", "dev clean", "dev noisy", "dev truncated", "asterisk adapt_dev")


def dev_sets(corpus, n: int = 200, real: bool = True) -> dict[str, list[dict]]:
    """The ledger's dev splits: the corpus's dev speakers (first ``n``; clean, noisy and truncated subsets of
    them) and, with ``real``, the adaptation half's dev part of the one real speaker. Never a test split."""
    from ..data import open_dataset
    dev = open_dataset(corpus, "dev").entries[:n]
    out = {"dev": dev,
           "dev clean": [e for e in dev if not e.get("noise") and not e.get("truncated")],
           "dev noisy": [e for e in dev if e.get("noise")],
           "dev truncated": [e for e in dev if e.get("truncated")]}
    if real:
        out["asterisk adapt_dev"] = open_dataset("asterisk:en", "adapt_dev").entries
    beside = Path(corpus).parent / "open"          # the open-vocabulary corpus, where it has been built
    if (beside / "corpus.json").is_file():
        out["dev open text"] = open_dataset(beside, "dev").entries[:n]
    return out


def ctc_transcribe(model, paths: list[str], batch_size: int = 16) -> list[str]:
    """Greedy CTC transcripts from a hybrid model's auxiliary CTC head (NeMo's CTC decoding), offline at the
    encoder's current lookahead: what the encoder alone hears, without the RNNT prediction network's prior."""
    import torch

    from ..audio import load_audio
    out = []
    for i in range(0, len(paths), batch_size):
        audios = [load_audio(p) for p in paths[i:i + batch_size]]
        x = torch.zeros(len(audios), max(len(a) for a in audios))
        for j, a in enumerate(audios):
            x[j, :len(a)] = torch.from_numpy(a)
        lengths = torch.tensor([len(a) for a in audios])
        with torch.inference_mode():
            f, fl = model.preprocessor(input_signal=x, length=lengths)
            enc, enc_len = model.encoder(audio_signal=f, length=fl)
            logp = model.ctc_decoder(encoder_output=enc)
            hyps = model.ctc_decoding.ctc_decoder_predictions_tensor(logp, decoder_lengths=enc_len)
        hyps = hyps[0] if isinstance(hyps, tuple) else hyps
        out += [h.text if hasattr(h, "text") else h for h in hyps]
    return out


def dev_wer(model, sets: dict[str, list[dict]], batch_size: int = 32, seed: int = 0, head: str = "rnnt") -> dict:
    """Greedy offline WER (normalised, 95 % interval) of ``model`` at its largest lookahead on each dev split.
    Offline decoding equals cache-aware streaming (tested), and is ~10x cheaper to run after every run.
    ``head="ctc"``: the hybrid's CTC head instead of the RNNT decoder (splits named "<split> (CTC head)")."""
    import torch
    if head not in ("rnnt", "ctc"):
        raise ValueError(f"head must be 'rnnt' or 'ctc', not {head!r}")

    from .scoring import wer_ci
    from .tokenizer import strip_special
    model.eval()
    largest = max((list(c) for c in model.encoder.att_context_size_all), key=lambda c: c[1])
    model.encoder.set_default_att_context_size(largest)
    out, cache = {}, {}
    for name, entries in sets.items():
        todo = [e["audio_filepath"] for e in entries if e["audio_filepath"] not in cache]
        if todo and head == "ctc":
            cache.update({p: strip_special(t) for p, t in zip(todo, ctc_transcribe(model, todo, batch_size))})
        elif todo:
            with torch.inference_mode():
                hyps = model.transcribe(todo, batch_size=batch_size, verbose=False)
            hyps = hyps[0] if isinstance(hyps, tuple) else hyps
            cache.update({p: strip_special(h.text if hasattr(h, "text") else h) for p, h in zip(todo, hyps)})
        if entries:
            w = wer_ci([e["text"] for e in entries], [cache[e["audio_filepath"]] for e in entries], seed)
            out[name if head == "rnnt" else f"{name} (CTC head)"] = {
                "wer": round(w["value"], 4), "ci95": [round(c, 4) for c in w["ci95"]], "n": w["n"]}
    return out


EOU_CONTEXTS = ((70, 1), (70, 13))   # the live widget's lookahead and the bench's
EOU_N = 100                          # dev clean utterances streamed for eou_live


def eou_live(model, entries: list[dict], contexts=EOU_CONTEXTS, after_s: float = 2.0) -> dict:
    """Does <EOU> come while the stream is still live? Each utterance goes on for ``after_s`` after its speech
    (its background looped, as a microphone's would), is fed to a cache-aware stream and never finalised: the
    first <EOU> event is the end-pointer's decision. Per lookahead: the share where it fired (95 % interval),
    the share where it fired before the speech ended (a cut-off), and the delay after the end of speech.
    Why: the WER of the offline pass cannot see this; r009 wrote <EOU> only in the final flush."""
    from ..audio import extend_after_speech, load_audio
    from ..events import EndOfUtterance
    from ..stats import rate_ci
    from .streaming import StreamingRecognizer
    model.eval()
    trained = [tuple(c) for c in model.encoder.att_context_size_all]
    audios = [extend_after_speech(load_audio(e["audio_filepath"]), float(e["speech_end"]), after_s) for e in entries]
    out = {}
    for ctx in (tuple(c) for c in contexts):
        if ctx not in trained:
            continue
        rec = StreamingRecognizer(model, list(ctx))
        fired, early, delays = 0, 0, []
        for k, (e, a) in enumerate(zip(entries, audios)):
            state = rec.new_stream(str(k))
            t = next((ev.time for ev in rec.accept_audio(state, a) if isinstance(ev, EndOfUtterance)), None)
            if t is None:
                continue
            fired += 1
            early += t < float(e["speech_end"])
            delays.append(t - float(e["speech_end"]))
        f, c = rate_ci(fired, len(entries)), rate_ci(early, len(entries))
        out[f"{list(ctx)}"] = {"fired": round(f["value"], 4), "fired_ci95": [round(x, 4) for x in f["ci95"]],
                               "early": round(c["value"], 4), "early_ci95": [round(x, 4) for x in c["ci95"]],
                               "delay_s_median": round(float(np.median(delays)), 3) if delays else None,
                               "delay_s_p90": round(float(np.percentile(delays, 90)), 3) if delays else None,
                               "n": len(entries), "after_s": after_s}
    return out


def add_eou_live(path: str | os.PathLike, run_id: str, scores: dict, how: str) -> dict:
    """Record ``eou_live`` figures in a run's entry (refused where that lookahead is there already)."""
    return add_scores(path, run_id, scores, how, field="eou_live")


def add_scores(path: str | os.PathLike, run_id: str, scores: dict, how: str, field: str = "dev_wer") -> dict:
    """Add dev splits scored after a run was recorded (its export, unchanged: checked by SHA-1 by the caller) to
    that run's entry (``field``: its ``dev_wer``, or ``eou_live``); a key already there is refused, so nothing
    recorded is overwritten. ``how`` is kept in the entry's ``scored_later`` list."""
    data = read(path)
    run = find(data["runs"], run_id)
    if run is None:
        raise LedgerError(f"{path}: no run {run_id!r}")
    clash = [s for s in scores if s in run.get(field, {})]
    if clash:
        what = "<EOU> figures at " if field == "eou_live" else ""
        raise LedgerError(f"{path}: run {run_id} already has {what}{', '.join(clash)}")
    run.setdefault(field, {}).update(scores)
    run.setdefault("scored_later", []).append(how)
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")
    return run


CTC_SPLITS = ("dev", "asterisk adapt_dev")     # where the CTC head is scored beside the RNNT decoder


def score_later(path: str | os.PathLike, run_id: str, export_dir: str | os.PathLike, corpus,
                splits=CTC_SPLITS, heads=("ctc",), n: int = 200, eou: bool = False) -> dict:
    """Score a recorded run's export on dev ``splits`` (of ``dev_sets``: e.g. the CTC head where it was not
    scored, or "dev open text" once that corpus exists) with each of ``heads`` and add them to its entry, never
    overwriting (the export must be the one recorded: same SHA-1)."""
    from .streaming import load_model
    export_dir = Path(export_dir)
    run = find(read(path)["runs"], run_id)
    if run is None:
        raise LedgerError(f"{path}: no run {run_id!r}")
    if sha1_of(export_dir / "model.nemo") != run.get("model_sha1"):
        raise LedgerError(f"{export_dir}/model.nemo is not run {run_id}'s export (SHA-1 differs)")
    available = dev_sets(corpus, n)
    if eou:                 # only the <EOU> figures (eou_live) on the first EOU_N utterances of "dev clean"
        return add_eou_live(path, run_id, eou_live(load_model(export_dir / "model.nemo", device="cpu"),
                                                   available["dev clean"][:EOU_N]),
                            f"{time.strftime('%Y-%m-%d')}: <EOU> while live (workbench.asr.ledger.eou_live)")
    missing = [s for s in splits if s not in available]
    if missing:
        raise LedgerError(f"no dev split {missing} here; there are {sorted(available)}")
    model = load_model(export_dir / "model.nemo", device="cpu")
    sets = {k: available[k] for k in splits}
    scores = {}
    for head in heads:
        scores.update(dev_wer(model, sets, head=head))
    return add_scores(path, run_id, scores, f"{time.strftime('%Y-%m-%d')}: {'+'.join(heads)} on {', '.join(sets)} "
                                            "(workbench.asr.ledger.score_later)")
