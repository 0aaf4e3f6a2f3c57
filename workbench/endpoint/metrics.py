"""End-pointing metrics, as the field reports them (e.g. Maas et al. 2018; Raju et al., ASRU 2023).

- **EP50 / EP90**: the 50th / 90th percentile of the endpoint latency, endpoint time minus the true end of
  speech, over the utterances that were *not* cut off.
- **Cut-off rate**: the share of utterances whose endpoint came before the true end of speech (the system
  stopped listening while the user was still talking, e.g. in a hesitation pause).
- **WER cost of cut-offs**: the words lost, as corpus WER of the reference against the reference truncated at
  the endpoint (jiwer; a perfect recogniser is assumed, so this isolates the end-pointer's damage).

An utterance on which an end-pointer never fires is ended by the end of its audio (``audio_end``).
Trade-off curves sweep one end-pointer's settings; its **Pareto front** (``pareto_front``) is, for each EP90,
the lowest cut-off rate any setting reaches at that EP90 or less. The table, the plot and the matched-EP90
comparison all read that one front (``best_at_ep90``): a step function, no interpolation between settings,
because only settings exist, not the points between them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Outcome:
    """One utterance under one end-pointer setting."""
    true_end: float                  # s, true end of speech
    endpoint: float | None           # s, when the end-pointer fired (None: never, before the audio ended)
    audio_end: float                 # s, end of the recording (the endpoint when it never fires)
    words: tuple = ()                # ((word, start, end), ...) of the reference, for the words lost

    @property
    def time(self) -> float:
        return self.audio_end if self.endpoint is None else self.endpoint

    @property
    def cut_off(self) -> bool:
        return self.time < self.true_end

    @property
    def latency(self) -> float:
        return self.time - self.true_end

    def kept_words(self) -> list[str]:
        """Reference words that had ended by the endpoint."""
        return [w for w, _, end in self.words if end <= self.time + 1e-9]


def summarize(outcomes: list[Outcome]) -> dict:
    """EP50, EP90 (ms, not cut-off utterances), cut-off rate, WER cost of cut-offs, counts."""
    import jiwer
    if not outcomes:
        raise ValueError("no outcomes to summarise")
    lat = np.array([o.latency for o in outcomes if not o.cut_off]) * 1000
    cut = [o for o in outcomes if o.cut_off]
    with_words = [o for o in outcomes if o.words]
    if with_words:
        refs = [" ".join(w for w, _, _ in o.words) for o in with_words]
        hyps = [" ".join(o.kept_words()) for o in with_words]
        wer_cost = float(jiwer.wer(refs, hyps))
    else:
        wer_cost = float("nan")
    return {"EP50_ms": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
            "EP90_ms": float(np.percentile(lat, 90)) if len(lat) else float("nan"),
            "cutoff_rate": len(cut) / len(outcomes), "wer_cost": wer_cost,
            "n": len(outcomes), "n_cut_off": len(cut), "n_never_fired": sum(o.endpoint is None for o in outcomes)}


def tradeoff(outcomes_by_setting: dict) -> list[dict]:
    """``{setting: [Outcome, ...]}`` -> one summary per setting (the trade-off curve), sorted by EP90."""
    rows = [{"setting": k, **summarize(v)} for k, v in outcomes_by_setting.items()]
    return sorted(rows, key=lambda r: (np.nan_to_num(r["EP90_ms"], nan=np.inf), r["cutoff_rate"]))


def pareto_front(curve: list[dict]) -> list[dict]:
    """The settings on the curve's lower-left front, by rising EP90: each has a lower cut-off rate than every
    setting with an EP90 at or below its own. Settings that never reach a finite EP90 are left out."""
    pts = sorted((r for r in curve if np.isfinite(r["EP90_ms"])), key=lambda r: (r["EP90_ms"], r["cutoff_rate"]))
    front, best = [], np.inf
    for r in pts:
        if r["cutoff_rate"] < best - 1e-12:
            front.append(r)
            best = r["cutoff_rate"]
    return front


def best_at_ep90(curve: list[dict], ep90_ms: float) -> dict | None:
    """The setting with the lowest cut-off rate among those whose EP90 is at most ``ep90_ms`` (the front's
    step at ``ep90_ms``); None when no setting is that fast."""
    if ep90_ms is None or not np.isfinite(ep90_ms):
        return None
    row = None
    for r in pareto_front(curve):
        if r["EP90_ms"] <= ep90_ms + 1e-9:
            row = r
    return row


def cutoff_at_ep90(curve: list[dict], ep90_ms: float) -> float:
    """The front's cut-off rate at ``ep90_ms`` (NaN when no setting reaches an EP90 that low)."""
    row = best_at_ep90(curve, ep90_ms)
    return float("nan") if row is None else float(row["cutoff_rate"])


def compare_at_ep90(curves: dict, ep90_ms: float | None = None) -> dict:
    """Each end-pointer's (``{name: curve}``) best setting at one EP90 budget: its cut-off rate and which
    setting that is. Default budget: the smallest EP90 every curve reaches."""
    if ep90_ms is None:
        mins = [min((r["EP90_ms"] for r in c if np.isfinite(r["EP90_ms"])), default=np.nan) for c in curves.values()]
        ep90_ms = float(np.max(mins)) if mins and np.all(np.isfinite(mins)) else float("nan")
    rows = {k: best_at_ep90(c, ep90_ms) for k, c in curves.items()}
    return {"EP90_ms": ep90_ms, "cutoff_rate": {k: (float("nan") if r is None else float(r["cutoff_rate"]))
                                                for k, r in rows.items()},
            "setting": {k: (None if r is None else r["setting"]) for k, r in rows.items()}}


def outcome_cis(outcomes: list[Outcome], seed: int = 0) -> dict:
    """The figures of one setting with 95 % intervals over utterances: cut-off rate (Wilson), EP50/EP90
    (bootstrap over the utterances not cut off)."""
    from ..stats import rate_ci, stat_ci
    lat = np.array([o.latency for o in outcomes if not o.cut_off]) * 1000
    return {"cutoff_rate": rate_ci(sum(o.cut_off for o in outcomes), len(outcomes)),
            "EP50_ms": stat_ci(lat, lambda x: np.percentile(x, 50), seed=seed),
            "EP90_ms": stat_ci(lat, lambda x: np.percentile(x, 90), seed=seed)}
