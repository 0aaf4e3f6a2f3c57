"""Confidence intervals, as a reviewer of a benchmark asks for them: 95 %, over utterances, with the count.

Rates (a share of utterances: cut-off rate) get Wilson's score interval (``scipy.stats.binomtest``); every
other statistic over utterances (corpus WER = errors / reference words, a percentile of latency, a mean)
gets a bootstrap over utterances (``scipy.stats.bootstrap``, BCa where it is defined, else percentile),
and a difference between two systems on the same utterances a *paired* bootstrap, so a gap inside the noise
is called that (``within_noise``: the interval of the difference contains 0).
"""
from __future__ import annotations

import numpy as np

N_RESAMPLES = 2000


def rate_ci(k: int, n: int, level: float = 0.95) -> dict:
    """``k`` of ``n`` utterances: the rate, its Wilson interval and the counts."""
    from scipy.stats import binomtest
    if n <= 0:
        return {"value": float("nan"), "ci95": [float("nan"), float("nan")], "k": int(k), "n": int(n)}
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return {"value": k / n, "ci95": [float(ci.low), float(ci.high)], "k": int(k), "n": int(n)}


def _bootstrap(data: tuple, statistic, level: float, seed: int, paired: bool) -> list[float]:
    from scipy.stats import bootstrap
    n = len(data[0])
    if n < 2:
        return [float("nan"), float("nan")]
    for method in ("BCa", "percentile"):
        try:
            res = bootstrap(data, statistic, paired=paired, vectorized=False, n_resamples=N_RESAMPLES,
                            confidence_level=level, method=method, random_state=np.random.default_rng(seed))
        except Exception:                     # BCa is undefined for degenerate resamples
            continue
        lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if np.isfinite(lo) and np.isfinite(hi):
            return [lo, hi]
    v = float(statistic(*data))
    return [v, v]


def corpus_wer(errors, words) -> float:
    words = np.asarray(words, float)
    return float(np.sum(errors) / max(1.0, words.sum()))


def wer_ci(errors, words, level: float = 0.95, seed: int = 0) -> dict:
    """Corpus WER (sum of errors / sum of reference words) with a bootstrap interval over utterances."""
    errors, words = np.asarray(errors, float), np.asarray(words, float)
    return {"value": corpus_wer(errors, words), "n": int(len(errors)),
            "ci95": _bootstrap((errors, words), corpus_wer, level, seed, paired=True)}


def stat_ci(values, statistic=np.mean, level: float = 0.95, seed: int = 0) -> dict:
    """Any statistic of per-utterance values (a mean, ``percentile(x, 90)``) with a bootstrap interval."""
    v = np.asarray(values, float)
    if not len(v):
        return {"value": float("nan"), "ci95": [float("nan"), float("nan")], "n": 0}
    return {"value": float(statistic(v)), "n": int(len(v)), "ci95": _bootstrap((v,), statistic, level, seed, False)}


def paired_diff_ci(a, b, statistic=np.mean, level: float = 0.95, seed: int = 0) -> dict:
    """statistic(a) - statistic(b) over the same utterances, with a paired bootstrap interval;
    ``within_noise`` when the interval contains 0."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) != len(b):
        raise ValueError(f"paired samples must have equal length, got {len(a)} and {len(b)}")
    diff = (lambda x, y: statistic(x) - statistic(y))
    ci = _bootstrap((a, b), diff, level, seed, paired=True)
    return {"value": float(diff(a, b)), "ci95": ci, "n": int(len(a)), "within_noise": bool(ci[0] <= 0 <= ci[1])}


def paired_wer_diff_ci(err_a, err_b, words, level: float = 0.95, seed: int = 0) -> dict:
    """WER(a) - WER(b) on the same utterances (same references), paired bootstrap."""
    err_a, err_b, words = (np.asarray(x, float) for x in (err_a, err_b, words))
    diff = (lambda x, y, w: corpus_wer(x, w) - corpus_wer(y, w))
    ci = _bootstrap((err_a, err_b, words), diff, level, seed, paired=True)
    return {"value": float(diff(err_a, err_b, words)), "ci95": ci, "n": int(len(words)),
            "within_noise": bool(ci[0] <= 0 <= ci[1])}


def paired_ci(data: tuple, statistic, level: float = 0.95, seed: int = 0) -> dict:
    """Any statistic of several per-utterance arrays of the same utterances (e.g. the relative WER change, the
    share of an oracle gap recovered), with a paired bootstrap interval."""
    data = tuple(np.asarray(x, float) for x in data)
    if len({len(x) for x in data}) != 1:
        raise ValueError(f"paired samples must have equal length, got {[len(x) for x in data]}")
    return {"value": float(statistic(*data)), "ci95": _bootstrap(data, statistic, level, seed, paired=True),
            "n": int(len(data[0]))}


def fmt(ci: dict, scale: float = 100.0, unit: str = " %", digits: int = 1) -> str:
    """'27.6 % [23.1, 32.4] (n=185)'."""
    v, (lo, hi) = ci["value"], ci["ci95"]
    return f"{v * scale:.{digits}f}{unit} [{lo * scale:.{digits}f}, {hi * scale:.{digits}f}] (n={ci['n']})"
