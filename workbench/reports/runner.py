"""The report runner: papermill over a set of notebooks, made for cron.

Guarantees: no prompts and no browser; a lock per day folder so two runs never write it at once; every
notebook runs even when another fails; outputs are staged in a temporary folder and moved into place,
and a failed notebook never replaces a good earlier rendering (its output goes to ``NAME.failed.*``).
"""
from __future__ import annotations

import base64
import datetime as dt
import fcntl
import html
import json
import logging
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from ..files import write_text_atomic
from . import metrics_of

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
REPORTS = REPO / "reports"
log = logging.getLogger("workbench.report")


class ReportError(RuntimeError):
    """The run could not start (bad arguments, unknown notebook, folder locked)."""


@dataclass
class NotebookResult:
    name: str
    status: str                      # "ok" or "failed"
    duration_s: float
    parameters: dict
    metrics: dict = field(default_factory=dict)
    error: dict | None = None        # {"cell": index, "ename":..., "evalue":..., "source":...}
    figures: list = field(default_factory=list)
    finished: str = ""


@dataclass
class ReportResult:
    folder: Path
    results: list[NotebookResult]

    @property
    def ok(self) -> bool:
        return all(r.status == "ok" for r in self.results)

    @property
    def failures(self) -> list[NotebookResult]:
        return [r for r in self.results if r.status != "ok"]


def resolve_notebooks(names: list[str] | None, folder: Path = NOTEBOOKS) -> list[Path]:
    if not names:
        found = sorted(folder.glob("*.ipynb"))
        if not found:
            raise ReportError(f"no notebooks in {folder}")
        return found
    out = []
    for n in names:
        p = Path(n)
        cands = [p, folder / p, folder / f"{n}.ipynb"]
        hit = next((c for c in cands if c.is_file() and c.suffix == ".ipynb"), None)
        if hit is None:
            raise ReportError(f"notebook not found: {n} (looked in {folder})")
        out.append(hit.resolve())
    return out


def parse_parameters(params: list[tuple[str, str]] = (), param_file: str | os.PathLike | None = None,
                     ) -> tuple[dict, dict]:
    """(parameters for every notebook, {notebook name: its own parameters}).

    The YAML file has two optional keys: ``parameters`` (all notebooks) and ``notebooks`` (per name).
    Command-line ``-p`` values are parsed as YAML (``-p n 3`` is an int) and win over the file.
    """
    common, per = {}, {}
    if param_file:
        pf = Path(param_file)
        if not pf.is_file():
            raise ReportError(f"parameter file not found: {pf}")
        try:
            data = yaml.safe_load(pf.read_text()) or {}
        except yaml.YAMLError as e:
            raise ReportError(f"{pf}: not valid YAML ({e})") from None
        if not isinstance(data, dict) or set(data) - {"parameters", "notebooks"}:
            raise ReportError(f"{pf}: expected a mapping with keys 'parameters' and/or 'notebooks'")
        common.update(data.get("parameters") or {})
        per = {k: dict(v or {}) for k, v in (data.get("notebooks") or {}).items()}
    for name, value in params:
        try:
            common[name] = yaml.safe_load(value)
        except yaml.YAMLError:
            common[name] = value
    return common, per


@contextmanager
def day_lock(folder: Path):
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock_path = folder.parent / f".{folder.name}.lock"
    with open(lock_path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReportError(f"another report run is writing {folder} (lock {lock_path}); try again later") from None
        fh.write(str(os.getpid()))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _first_error(nb) -> dict | None:
    """The failing cell, numbered as in the source notebook (papermill's injected cells not counted)."""
    skip = {"injected-parameters", "papermill-error-cell-tag"}
    i = -1
    for cell in nb.cells:
        if skip & set(cell.get("metadata", {}).get("tags", [])):
            continue
        i += 1
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                return {"cell": i, "execution_count": cell.get("execution_count"), "ename": o.get("ename", ""),
                        "evalue": o.get("evalue", ""), "source": cell.get("source", "")[:2000]}
    return None


def _save_figures(nb, folder: Path, name: str, limit: int = 6) -> list[str]:
    """The notebook's first PNG figures as files, for thumbnails in the index."""
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            png = o.get("data", {}).get("image/png")
            if png and len(out) < limit:
                f = folder / f"{name}.fig{len(out) + 1}.png"
                f.write_bytes(base64.b64decode(png))
                out.append(f.name)
    return out


def _to_html(nb, no_input: bool) -> str:
    from nbconvert import HTMLExporter
    body, _ = HTMLExporter(template_name="lab", exclude_input=no_input).from_notebook_node(nb)
    return body


# failures of the machinery rather than of the notebook's code (nbclient's names)
_TRANSIENT = {"DeadKernelError", "CellTimeoutError", "TimeoutError"}


def run_one(path: Path, staging: Path, parameters: dict, no_input: bool, timeout: int) -> NotebookResult:
    import nbformat
    import papermill as pm

    name = path.stem
    declared = {p for p in pm.inspect_notebook(str(path))}
    used = {k: v for k, v in parameters.items() if k in declared}
    out_nb = staging / f"{name}.ipynb"
    t0 = time.time()
    status, error = "ok", None
    try:
        pm.execute_notebook(str(path), str(out_nb), parameters=used, cwd=str(path.parent), kernel_name="python3",
                            progress_bar=False, log_output=False, execution_timeout=timeout,
                            report_mode=False)
    except pm.PapermillExecutionError as e:
        status = "failed"
        error = {"cell": None, "execution_count": e.exec_count, "ename": e.ename, "evalue": e.evalue, "source": e.source[:2000]}
    except Exception as e:   # kernel died, timeout, bad notebook: still a result, never a crash of the run
        status = "failed"
        error = {"cell": None, "ename": type(e).__name__, "evalue": str(e)[:2000], "source": ""}
    duration = time.time() - t0
    result = NotebookResult(name, status, round(duration, 1), used,
                            finished=dt.datetime.now().isoformat(timespec="seconds"))
    if out_nb.exists():
        nb = nbformat.read(out_nb, as_version=4)
        result.metrics = metrics_of(nb)
        if status == "failed":
            result.error = _first_error(nb) or error
        try:
            (staging / f"{name}.html").write_text(_to_html(nb, no_input))
            result.figures = _save_figures(nb, staging, name)
        except Exception as e:       # the notebook ran, but its rendering did not: that notebook failed, not the run
            result.status = "failed"
            result.error = result.error or {"cell": "html", "ename": type(e).__name__,
                                            "evalue": f"rendering the executed notebook failed: {e}"[:2000],
                                            "source": ""}
    else:
        result.error = error
    return result


def check_parameters(paths: list[Path], names: set, per: dict) -> None:
    """A ``-p`` name (``names``) that no selected notebook declares, or a per-notebook parameter its notebook
    does not declare, is a typo (it would silently run the default, perhaps the hours-long corpus): refuse
    it, listing the names that are declared."""
    import papermill as pm
    declared = {p.stem: set(pm.inspect_notebook(str(p))) for p in paths}
    everything = set().union(*declared.values()) if declared else set()
    unknown = sorted(set(names) - everything)
    if unknown:
        raise ReportError(f"parameter(s) {unknown} are declared by none of {sorted(declared)}; "
                          f"declared: {sorted(everything)}")
    for name, params in per.items():
        if name in declared and set(params) - declared[name]:
            raise ReportError(f"{name} declares no parameter(s) {sorted(set(params) - declared[name])}; "
                              f"it declares {sorted(declared[name])}")


def _publish(staging: Path, folder: Path, r: NotebookResult) -> None:
    """Move one notebook's outputs into the day folder. A failure goes to NAME.failed.*; a success
    replaces the earlier rendering and clears a stale failure."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = "" if r.status == "ok" else ".failed"
    for old in folder.glob(f"{r.name}{suffix}.fig*.png"):
        old.unlink()
    for f in staging.glob(f"{r.name}.*"):
        rest = f.name[len(r.name):]
        target = folder / f"{r.name}{suffix}{rest}"
        os.replace(f, target)
    if r.status == "ok":
        for stale in folder.glob(f"{r.name}.failed.*"):
            stale.unlink()
    else:
        r.figures = [f.replace(f"{r.name}.", f"{r.name}.failed.", 1) for f in r.figures]


def run_reports(notebooks: list[str] | None = None, params: list[tuple[str, str]] = (),
                param_file: str | os.PathLike | None = None, out_root: str | os.PathLike | None = None,
                date: str | None = None, no_input: bool = False, timeout: int = 1800,
                notebook_dir: str | os.PathLike = NOTEBOOKS, retries: int = 0) -> ReportResult:
    """Run notebooks into ``<out_root>/<date>/``; see the module docstring for the guarantees.

    ``retries``: how often a notebook whose kernel died or whose cell timed out is run again (logged). Seen
    once in a full test run: the kernel sat idle after its cell while the client waited for a reply that never
    came; alone, the same notebook ran in 17 s. A cell that raises is never retried."""
    paths = resolve_notebooks(notebooks, Path(notebook_dir))
    common, per = parse_parameters(list(params), param_file)
    # a parameter file may cover more notebooks than this run (smoke.yaml for a subset), but a name that
    # matches no notebook at all is a typo
    known = {p.stem for p in Path(notebook_dir).glob("*.ipynb")} | {p.stem for p in paths}
    unknown = set(per) - known
    if unknown:
        raise ReportError(f"parameter file names notebooks that do not exist in {notebook_dir}: {sorted(unknown)}")
    check_parameters(paths, {k for k, _ in params}, per)
    out_root = Path(out_root or REPORTS)
    date = date or dt.date.today().isoformat()
    folder = out_root / date
    with day_lock(folder):
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(folder / "report.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        old_log = os.environ.get("WORKBENCH_LOG")
        os.environ["WORKBENCH_LOG"] = str((folder / "report.log").resolve())   # the kernels' library logs
        staging = out_root / f".staging-{date}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        results = []
        try:
            log.info("run of %d notebook(s) into %s", len(paths), folder)
            for path in paths:
                parameters = {**common, **per.get(path.stem, {})}
                print(f"[report] {path.stem} ...", flush=True)
                r = run_one(path, staging, parameters, no_input, timeout)
                for _ in range(retries):
                    if r.status == "ok" or (r.error or {}).get("ename") not in _TRANSIENT:
                        break
                    log.warning("%s: %s after %.1f s, running it again", r.name, r.error["ename"], r.duration_s)
                    r = run_one(path, staging, parameters, no_input, timeout)
                _publish(staging, folder, r)
                results.append(r)
                msg = f"{r.name}: {r.status} in {r.duration_s:.1f} s"
                if r.error:
                    msg += f" (cell {r.error['cell']}: {r.error['ename']}: {r.error['evalue'][:200]})"
                print(f"[report] {msg}", flush=True)
                (log.info if r.status == "ok" else log.error)(msg)
            summary = _merge_summary(folder, results)
            write_text_atomic(folder / "summary.json", json.dumps(summary, indent=1))
            write_text_atomic(folder / "index.html", render_index(summary, date))
        finally:
            if old_log is None:
                os.environ.pop("WORKBENCH_LOG", None)
            else:
                os.environ["WORKBENCH_LOG"] = old_log
            shutil.rmtree(staging, ignore_errors=True)
            log.removeHandler(handler)
            handler.close()
    result = ReportResult(folder, results)
    if result.failures:
        print(f"[report] FAILED: {', '.join(r.name for r in result.failures)} (see {folder / 'index.html'})")
    else:
        print(f"[report] all {len(results)} notebook(s) ok: {folder / 'index.html'}")
    return result


def _merge_summary(folder: Path, results: list[NotebookResult]) -> dict:
    """Today's summary: notebooks run now replace their entries; others run earlier today are kept.
    A failed run keeps the earlier good entry under ``last_ok`` (its files were not replaced)."""
    path = folder / "summary.json"
    earlier = {}
    if path.exists():
        try:
            earlier = {n["name"]: n for n in json.loads(path.read_text()).get("notebooks", [])}
        except (json.JSONDecodeError, KeyError, TypeError):
            earlier = {}
    for r in results:
        entry = asdict(r)
        prev = earlier.get(r.name)
        if r.status != "ok" and prev:
            good = prev if prev.get("status") == "ok" else prev.get("last_ok")
            if good:
                entry["last_ok"] = {k: v for k, v in good.items() if k != "last_ok"}
        earlier[r.name] = entry
    notebooks = [earlier[k] for k in sorted(earlier)]
    return {"date": folder.name, "updated": dt.datetime.now().isoformat(timespec="seconds"),
            "ok": all(n["status"] == "ok" for n in notebooks), "notebooks": notebooks}


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(json.dumps(v) if not isinstance(v, str) else v)


def render_index(summary: dict, date: str) -> str:
    rows = []
    for n in summary["notebooks"]:
        ok = n["status"] == "ok"
        link = f"{n['name']}.html" if ok else f"{n['name']}.failed.html"
        metrics = "".join(f"<li><b>{html.escape(k)}</b> = {_fmt(m['value'])}{' ' + html.escape(m['unit']) if m.get('unit') else ''}</li>"
                          for k, m in n.get("metrics", {}).items())
        params = "".join(f"<li>{html.escape(k)} = {_fmt(v)}</li>" for k, v in n.get("parameters", {}).items())
        figs = "".join(f'<a href="{f}"><img src="{f}" height="110"></a>' for f in n.get("figures", []))
        err = ""
        if n.get("error"):
            e = n["error"]
            where = f"cell {e.get('cell')}" + (f" (In [{e['execution_count']}])" if e.get("execution_count") else "")
            err = (f"<div class='err'><b>{where}: {html.escape(str(e.get('ename')))}</b>: "
                   f"{html.escape(str(e.get('evalue')))}<pre>{html.escape(e.get('source') or '')}</pre></div>")
            if n.get("last_ok"):
                err += (f"<div>earlier good run kept: <a href='{n['name']}.html'>{n['name']}.html</a> "
                        f"({html.escape(n['last_ok'].get('finished', ''))})</div>")
        rows.append(f"<tr class='{'ok' if ok else 'fail'}'><td><a href='{link}'>{html.escape(n['name'])}</a></td>"
                    f"<td>{n['status']}</td><td>{n['duration_s']:.1f} s</td><td><ul>{params}</ul></td>"
                    f"<td><ul>{metrics}</ul></td><td>{figs}{err}</td></tr>")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>speech-workbench report {date}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:6px;vertical-align:top}}tr.fail{{background:#fee}}tr.ok td:nth-child(2){{color:#070}}
.err pre{{background:#fff5f5;max-width:60em;overflow:auto}}ul{{margin:0;padding-left:1.2em}}</style></head>
<body><h1>speech-workbench report {date}</h1><p>updated {summary['updated']} &middot;
{'all notebooks ok' if summary['ok'] else 'some notebooks failed'} &middot; <a href="summary.json">summary.json</a>
&middot; <a href="report.log">log</a></p>
<table><tr><th>notebook</th><th>status</th><th>duration</th><th>parameters</th><th>metrics</th><th>figures / error</th></tr>
{''.join(rows)}</table></body></html>
"""
