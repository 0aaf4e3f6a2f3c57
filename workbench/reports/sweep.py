"""``python -m workbench sweep GRID.yaml``: a grid of notebook or bench runs as Ray tasks, and one page that
compares them.

Why Ray: a sweep that outgrows a laptop (every end-pointer setting × every model × every noise level) moves to a
cluster by changing one argument (``--address``). Each run declares its resources (``num_cpus``, ``num_gpus``),
so Ray places it. Nothing here schedules. Each cell runs in a Ray worker process: a notebook through papermill,
whose kernel is a process of its own, or a bench as ``python -m workbench bench``. Papermill is process-safe but not
thread-safe with a working directory, so cells never share a process.

The grid (YAML)::

    name: endpointing                    # the sweep's folder: reports/<date>/sweep-<name>/
    resources: {num_cpus: 1, num_gpus: 0}
    timeout: 1800                        # per notebook cell (papermill), or per bench (seconds)
    runs:
      - notebook: 04_endpointing
        parameters: {corpus_size: smoke}         # the same in every cell
        grid: {n_eval: [8, 16], n_dev: [8]}      # the cross product: one cell each
      - bench: endpoint
        parameters: {n: 40}
        grid: {pause-ms: [300, 500]}

Guarantees:
- each cell is written to a staging folder and moved into place whole, so a cell folder is complete or absent;
- a failing cell does not stop the others, and the page shows its error;
- running the same sweep again skips the cells that already succeeded with the same parameters;
- Ctrl-C cancels the running cells, removes their staging folders, and still writes ``sweep.json`` and the page
  for the cells that finished.
"""
from __future__ import annotations

import datetime as dt
import html
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from typing import Callable
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from ..files import write_text_atomic
from .runner import NOTEBOOKS, REPORTS, ReportError


class SweepError(ReportError):
    """A grid that cannot run: unreadable YAML, an unknown notebook or bench, a parameter nobody declares."""


@dataclass
class Cell:
    key: str                       # the cell's folder name: target and its grid values
    kind: str                      # "notebook" or "bench"
    target: str                    # notebook stem or bench name
    parameters: dict               # everything passed (fixed and grid)
    varied: dict                   # the grid's values of this cell


@dataclass
class CellResult:
    key: str
    kind: str
    target: str
    parameters: dict
    varied: dict
    status: str                    # "ok", "failed", "skipped" (succeeded in an earlier run), "cancelled"
    duration_s: float = 0.0
    metrics: dict = field(default_factory=dict)
    error: dict | None = None
    finished: str = ""


def _slug(v) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", str(v)).strip("-")[:40] or "x"


def load_grid(path: str | os.PathLike, notebook_dir: Path = NOTEBOOKS,
              check_bench: Callable[[list[str]], str | None] | None = None) -> tuple[dict, list[Cell]]:
    """The grid's settings and its cells, checked before anything runs. A bench cell is checked by
    ``check_bench(argv)``, which says why ``python -m workbench bench <argv>`` would be refused (or None): the
    command line's own parser judges (``workbench.__main__.bench_argv_error``), so the sweep never reads it."""
    p = Path(path)
    try:
        spec = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise SweepError(f"cannot read the grid {p}: {e}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("runs"), list) or not spec["runs"]:
        raise SweepError(f"{p}: a grid needs a non-empty list 'runs' (see workbench.reports.sweep)")
    settings = {"name": _slug(spec.get("name") or p.stem), "timeout": int(spec.get("timeout", 1800)),
                "resources": {"num_cpus": 1, "num_gpus": 0, **(spec.get("resources") or {})}}
    bad = set(settings["resources"]) - {"num_cpus", "num_gpus", "memory"}
    if bad:
        raise SweepError(f"{p}: resources may name num_cpus, num_gpus, memory; got {sorted(bad)}")
    cells: list[Cell] = []
    for i, run in enumerate(spec["runs"]):
        if not isinstance(run, dict) or len({"notebook", "bench"} & set(run)) != 1:
            raise SweepError(f"{p}: run {i} must name exactly one of 'notebook' or 'bench'")
        kind = "notebook" if "notebook" in run else "bench"
        target = str(run[kind])
        fixed, grid = dict(run.get("parameters") or {}), dict(run.get("grid") or {})
        for k, v in grid.items():
            if not isinstance(v, list) or not v:
                raise SweepError(f"{p}: run {i} ({target}): grid value {k!r} must be a non-empty list")
        names = set(fixed) | set(grid)
        if kind == "notebook":
            nb = Path(notebook_dir) / f"{target}.ipynb"
            if not nb.is_file():
                raise SweepError(f"{p}: run {i}: no notebook {target!r} in {notebook_dir}")
            import papermill as pm
            declared = set(pm.inspect_notebook(str(nb)))
            if names - declared:
                raise SweepError(f"{p}: run {i}: {target} declares no parameter(s) {sorted(names - declared)}; "
                                 f"it declares {sorted(declared)}")
        elif check_bench is None:
            raise SweepError(f"{p}: run {i}: a bench run needs check_bench (the command line's parser) to be "
                             f"checked; python -m workbench sweep passes it")
        for values in itertools.product(*grid.values()) if grid else [()]:
            varied = dict(zip(grid, values))
            key = "__".join([_slug(target)] + [f"{_slug(k)}={_slug(v)}" for k, v in varied.items()])
            cell = Cell(key, kind, target, {**fixed, **varied}, varied)
            if kind == "bench":
                why = check_bench(bench_argv(cell, Path("out")))
                if why:
                    raise SweepError(f"{p}: run {i}: bench {target} refuses {cell.parameters}: {why}")
            cells.append(cell)
    keys = [c.key for c in cells]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise SweepError(f"{p}: cells {dup} appear twice")
    return settings, cells


# --- one cell, in a Ray worker ------------------------------------------------------------------------------------
def run_cell(cell: dict, folder: str, timeout: int, notebook_dir: str = str(NOTEBOOKS)) -> dict:
    """Run one cell into ``folder/<key>/`` (staged, then moved into place whole) and return its CellResult."""
    from .runner import run_one
    c = Cell(**cell)
    folder = Path(folder)
    staging = folder / f".{c.key}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    t0 = time.time()
    try:
        if c.kind == "notebook":
            r = run_one(Path(notebook_dir) / f"{c.target}.ipynb", staging, c.parameters, False, timeout)
            res = CellResult(c.key, c.kind, c.target, c.parameters, c.varied, r.status, r.duration_s, r.metrics,
                             r.error)
        else:
            res = _run_bench(c, staging, timeout)
        res.duration_s = round(time.time() - t0, 1)
        res.finished = dt.datetime.now().isoformat(timespec="seconds")
        (staging / "result.json").write_text(json.dumps(asdict(res), indent=1, default=str))
        final = folder / c.key
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        return asdict(res)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _numbers(d, prefix: str = "", depth: int = 0) -> dict:
    """The numeric leaves of a bench result (a rate's ``value``, a count), keyed by their path."""
    out = {}
    if depth > 4 or not isinstance(d, dict):
        return out
    if isinstance(d.get("value"), (int, float)) and not isinstance(d.get("value"), bool):
        return {prefix.rstrip("."): {"value": float(d["value"]), "unit": None}}
    for k, v in d.items():
        if k in ("provenance", "examples"):
            continue
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[f"{prefix}{k}"] = {"value": float(v), "unit": None}
        elif isinstance(v, dict):
            out.update(_numbers(v, f"{prefix}{k}.", depth + 1))
    return out


def bench_argv(c: Cell, staging: Path) -> list[str]:
    """The arguments after ``python -m workbench bench`` that run cell ``c`` into ``staging``."""
    argv = [c.target, "--out", str(staging), "--results", str(staging / "results")]
    for k, v in c.parameters.items():
        flag = "--" + k.replace("_", "-")
        if v is True:
            argv.append(flag)
        elif v is not False and v is not None:
            argv += [flag, str(v)]
    return argv


def _run_bench(c: Cell, staging: Path, timeout: int) -> CellResult:
    cmd = [sys.executable, "-m", "workbench", "bench", *bench_argv(c, staging)]
    (staging / "command.txt").write_text(" ".join(cmd) + "\n")
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return CellResult(c.key, c.kind, c.target, c.parameters, c.varied, "failed",
                          error={"ename": "TimeoutExpired", "evalue": f"bench ran past {timeout} s", "source": ""})
    (staging / "output.log").write_text(p.stdout + p.stderr)
    if p.returncode != 0:
        return CellResult(c.key, c.kind, c.target, c.parameters, c.varied, "failed",
                          error={"ename": f"exit {p.returncode}", "evalue": (p.stderr or p.stdout)[-2000:], "source": ""})
    found = sorted((staging / "results").glob("*.json"))
    metrics = _numbers(json.loads(found[0].read_text())) if found else {}
    return CellResult(c.key, c.kind, c.target, c.parameters, c.varied, "ok", metrics=dict(list(metrics.items())[:60]))


# --- the driver -------------------------------------------------------------------------------------------------
def _earlier(folder: Path, c: Cell) -> dict | None:
    """The result of an earlier run of this cell when it succeeded with the same parameters."""
    f = folder / c.key / "result.json"
    if not f.is_file():
        return None
    try:
        r = json.loads(f.read_text())
    except json.JSONDecodeError:
        return None
    same = json.loads(json.dumps(r.get("parameters"), default=str)) == json.loads(json.dumps(c.parameters, default=str))
    return r if r.get("status") == "ok" and same else None


def init_ray(address: str | None = None, num_cpus: int | None = None):
    """Ray on this machine's cores (no address), or on a running cluster (``auto``, ``ray://host:10001``)."""
    import ray
    # a busy laptop can take longer than Ray's default to start its agent: wait for it rather than fail
    os.environ.setdefault("RAY_agent_register_timeout_ms", "120000")
    if ray.is_initialized():
        return ray
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 object_store_memory=128 * 2**20)
    return ray


def run_sweep(grid: str | os.PathLike, out_root: str | os.PathLike | None = None, date: str | None = None,
              address: str | None = None, num_cpus: int | None = None, notebook_dir: Path = NOTEBOOKS,
              log=print, check_bench: Callable[[list[str]], str | None] | None = None) -> dict:
    """Run every cell of ``grid`` not already done; returns the sweep summary (also ``sweep.json``).
    ``check_bench``: see :func:`load_grid`."""
    settings, cells = load_grid(grid, notebook_dir, check_bench)
    folder = Path(out_root or REPORTS) / (date or dt.date.today().isoformat()) / f"sweep-{settings['name']}"
    folder.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    todo = []
    for c in cells:
        prev = _earlier(folder, c)
        if prev is not None:
            results[c.key] = {**prev, "status": "skipped"}
            log(f"[sweep] {c.key}: done in an earlier run, skipped")
        else:
            todo.append(c)
    t0 = time.time()
    pending: dict = {}
    ray = None
    try:
        if todo:
            ray = init_ray(address, num_cpus)
            remote = ray.remote(run_cell).options(**settings["resources"], max_retries=0)
            pending = {remote.remote(asdict(c), str(folder), settings["timeout"], str(notebook_dir)): c for c in todo}
            log(f"[sweep] {len(todo)} cell(s) on Ray ({settings['resources']}), {len(results)} skipped")
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            c = pending.pop(done[0])
            try:
                r = ray.get(done[0])
            except Exception as e:             # the worker died: the cell failed, the sweep goes on
                r = asdict(CellResult(c.key, c.kind, c.target, c.parameters, c.varied, "failed",
                                      error={"ename": type(e).__name__, "evalue": str(e)[-2000:], "source": ""}))
            results[c.key] = r
            err = r.get("error") or {}
            log(f"[sweep] {c.key}: {r['status']} in {r['duration_s']:.1f} s"
                + (f" ({err.get('ename')}: {str(err.get('evalue'))[:160]})" if r["status"] != "ok" else ""))
    except KeyboardInterrupt:
        log(f"[sweep] interrupted: cancelling {len(pending)} running cell(s); finished cells are kept")
        for ref, c in pending.items():
            ray.cancel(ref, force=True)
            results[c.key] = asdict(CellResult(c.key, c.kind, c.target, c.parameters, c.varied, "cancelled"))
        raise
    finally:
        for stale in folder.glob(".*.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        summary = {"name": settings["name"], "grid": str(grid), "folder": str(folder), "address": address or "local",
                   "resources": settings["resources"], "updated": dt.datetime.now().isoformat(timespec="seconds"),
                   "seconds": round(time.time() - t0, 1),
                   "cells": [results[c.key] for c in cells if c.key in results]}
        summary["ok"] = all(r["status"] in ("ok", "skipped") for r in summary["cells"]) and \
            len(summary["cells"]) == len(cells)
        write_text_atomic(folder / "sweep.json", json.dumps(summary, indent=1, default=str))
        write_text_atomic(folder / "index.html", render_page(summary, folder))
    log(f"[sweep] {'all ok' if summary['ok'] else 'FAILED cells'}: {folder / 'index.html'}")
    return summary


# --- the comparison page ----------------------------------------------------------------------------------------
def comparison_table(summary: dict):
    """One row per cell: its grid values, status, duration and every recorded metric."""
    import pandas as pd
    rows = []
    for r in summary["cells"]:
        row = {"cell": r["key"], "target": r["target"], **{f"@{k}": v for k, v in r["varied"].items()},
               "status": r["status"], "seconds": r["duration_s"]}
        row.update({k: m["value"] for k, m in (r.get("metrics") or {}).items() if isinstance(m, dict)})
        rows.append(row)
    return pd.DataFrame(rows)


def _v(v) -> str:
    """A grid value as written (pandas turns 8 into 8.0 beside a missing value)."""
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def _plots(df, folder: Path, limit: int = 12) -> list[str]:
    """Per target, a plot per metric recorded by more than one of its cells: the metric against the first grid
    parameter that varies, one line per combination of the others."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    for old in folder.glob("sweep.fig*.png"):
        old.unlink()
    out = []
    for target, dt_ in df.groupby("target", sort=False):
        params = [c for c in dt_.columns if c.startswith("@") and dt_[c].notna().any()]
        skip = {"cell", "target", "status", "seconds"} | {c for c in dt_.columns if c.startswith("@")}
        # metrics that change across the grid first (a count of utterances that never changes tells nothing)
        metrics = [c for c in dt_.columns if c not in skip and dt_[c].notna().sum() > 1]
        metrics = [c for c in metrics if dt_[c].nunique() > 1] or metrics[:2]
        x = next((p for p in params if dt_[p].astype(str).nunique() > 1), None)
        others = [p for p in params if p != x]
        for m in metrics:
            if len(out) >= limit:
                return out
            fig, ax = plt.subplots(figsize=(5, 3))
            groups = dt_.groupby(others, dropna=False) if (x and others) else [((), dt_)]
            for name, g in groups:
                g = g[g[m].notna()]
                if x:
                    order = pd.to_numeric(g[x], errors="coerce")
                    g = g.iloc[(order if order.notna().all() else g[x].astype(str)).argsort()]
                    label = ", ".join(f"{p[1:]}={_v(v)}" for p, v in zip(others, name if isinstance(name, tuple) else (name,)))
                    ax.plot([_v(v) for v in g[x]], g[m], marker="o", label=label or None)
                else:
                    ax.bar(g["cell"], g[m])
            ax.set_title(f"{target}: {m}", fontsize=9)
            ax.set_xlabel(x[1:] if x else "cell")
            if x and others:
                ax.legend(fontsize=6)
            fig.tight_layout()
            f = f"sweep.fig{len(out)}.png"
            fig.savefig(folder / f, dpi=90)
            plt.close(fig)
            out.append(f)
    return out


def render_page(summary: dict, folder: Path) -> str:
    df = comparison_table(summary)
    figs = _plots(df, folder) if len(df) else []
    rows = []
    for r in summary["cells"]:
        err = r.get("error") or {}
        link = f'<a href="{html.escape(r["key"])}/{html.escape(r["target"])}.html">{html.escape(r["key"])}</a>' \
            if r["kind"] == "notebook" and r["status"] in ("ok", "skipped", "failed") else html.escape(r["key"])
        rows.append(f"<tr class='{r['status']}'><td>{link}</td><td>{r['status']}</td><td>{r['duration_s']:.1f}</td>"
                    f"<td>{html.escape(json.dumps(r['varied'], default=str))}</td>"
                    f"<td>{html.escape(str(err.get('ename', '')) + ': ' + str(err.get('evalue', ''))[:300]) if err else ''}</td></tr>")
    table = df.drop(columns=["cell"]).to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="") if len(df) else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>sweep {html.escape(summary['name'])}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:2px 8px;border-bottom:1px solid #ddd}}
tr.failed,tr.cancelled{{background:#fdd}} tr.skipped{{color:#666}}</style></head><body>
<h1>Sweep {html.escape(summary['name'])}</h1>
<p>{html.escape(summary['grid'])} on Ray ({html.escape(summary['address'])}, {html.escape(json.dumps(summary['resources']))});
updated {summary['updated']}; {'all cells ok' if summary['ok'] else '<b>some cells failed or did not run</b>'}.</p>
<h2>Cells</h2><table><tr><th>cell</th><th>status</th><th>seconds</th><th>grid values</th><th>error</th></tr>
{''.join(rows)}</table>
<h2>Recorded metrics across the grid</h2>{table}
{''.join(f'<img src="{f}">' for f in figs)}
</body></html>"""
