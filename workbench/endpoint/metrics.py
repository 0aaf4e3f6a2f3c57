"""End-pointing metrics, as the field reports them (e.g. Maas et al. 2018; Raju et al., ASRU 2023).

- **EP50 / EP90**: the 50th / 90th percentile of the endpoint latency, endpoint time minus the true end of
  speech, over the utterances that were *not* cut off.
- **Cut-off rate**: the share of utterances whose endpoint came before the true end of speech (the system
  stopped listening while the user was still talking, e.g. in a hesitation pause).
- **WER cost of cut-offs**: the words lost, as corpus WER of the reference against the reference truncated at
  the endpoint (jiwer; a perfect recogniser is assumed, so this isolates the end-pointer's damage).

An utterance on which an end-pointer never fires is ended by the end of its audio (``audio_end``).
Trade-off curves sweep one end-pointer's threshold; end-pointers are compared at a matched EP90 by
interpolating each curve's cut-off rate there.
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


def cutoff_at_ep90(curve: list[dict], ep90_ms: float) -> float:
    """The curve's cut-off rate at ``ep90_ms``, linearly interpolated between its settings (NaN outside
    the EP90 range the sweep covered: no extrapolation)."""
    pts = sorted((r["EP90_ms"], r["cutoff_rate"]) for r in curve if np.isfinite(r["EP90_ms"]))
    if not pts or ep90_ms < pts[0][0] - 1e-9 or ep90_ms > pts[-1][0] + 1e-9:
        return float("nan")
    xs = np.array([p[0] for p in pts])
    ys = np.array([p[1] for p in pts])
    # several settings may share an EP90: keep the best cut-off rate there (the curve's lower envelope)
    ux = np.unique(xs)
    uy = np.array([ys[xs == x].min() for x in ux])
    return float(np.interp(ep90_ms, ux, uy))


def compare_at_ep90(curves: dict, ep90_ms: float | None = None) -> dict:
    """Cut-off rate of each end-pointer (``{name: curve}``) at one EP90. Default EP90: the largest value
    every curve reaches (so no curve is extrapolated) ... capped at the smallest curve maximum."""
    if ep90_ms is None:
        lo = max(min(r["EP90_ms"] for r in c if np.isfinite(r["EP90_ms"])) for c in curves.values())
        hi = min(max(r["EP90_ms"] for r in c if np.isfinite(r["EP90_ms"])) for c in curves.values())
        ep90_ms = hi if hi >= lo else float("nan")
    return {"EP90_ms": ep90_ms, "cutoff_rate": {k: cutoff_at_ep90(c, ep90_ms) for k, c in curves.items()}}
