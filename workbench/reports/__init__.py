"""Reports: notebooks executed by papermill into dated folders, and the metrics they record.

A notebook calls :func:`record` for the few numbers a reader of the report should see without opening
it (a WER, a latency, a corpus size). The value travels inside the executed notebook as display data
of its own MIME type, so nothing else (files, environment variables) has to line up for it to arrive.
"""
from __future__ import annotations

import json
import math
from numbers import Number

METRIC_MIME = "application/vnd.workbench.metric+json"


def _plain(value):
    """numpy scalars and arrays -> JSON types; anything else must already be JSON."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    json.dumps(value)   # raises TypeError for anything that would not survive the trip
    return value


def record(name: str, value, unit: str | None = None, display: bool = True) -> dict:
    """Record a key metric of this notebook for the report index and summary.json."""
    if not isinstance(name, str) or not name:
        raise ValueError("metric name must be a non-empty string")
    payload = {"name": name, "value": _plain(value), "unit": unit}
    if display:
        from IPython.display import display as _display
        shown = f"{value:.4g}" if isinstance(value, Number) and not isinstance(value, bool) else value
        _display({METRIC_MIME: payload, "text/plain": f"{name} = {shown}{' ' + unit if unit else ''}"}, raw=True)
    return payload


def metrics_of(nb) -> dict:
    """Every metric a notebook recorded (the last value wins), read from its outputs."""
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            m = o.get("data", {}).get(METRIC_MIME)
            if m:
                out[m["name"]] = {"value": m["value"], "unit": m.get("unit")}
    return out


__all__ = ["record", "metrics_of", "METRIC_MIME"]
