"""Results: where a benchmark's figures are written, and what they carry to be reproduced.

Every room's ``bench.py`` writes its JSON through :func:`save_bench`: never half-written, stamped with
:func:`provenance` (commit, dirty flag, machine) and the SHA-1 of the model it measured, so a later model
makes the generated tables visibly stale. :func:`require_committed` refuses to write committed evidence from
a tree with uncommitted changes unless asked. A base module: rooms import it; it imports no room.
"""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]     # the repository
RESULTS = ROOT / "benchmarks" / "results"       # the committed evidence the README's tables are generated from


def provenance() -> dict:
    """What a benchmark figure needs beside it to be reproduced: commit (and whether the tree was dirty),
    date, machine (CPU model, cores, memory), torch's threads and the GPU if any."""
    import os
    import platform
    import subprocess
    import time
    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:
            return ""
    cpu = platform.processor()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except Exception:
        pass
    mem_gb = None
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except Exception:
        pass
    import torch
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(uncommitted_changes()),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem_gb, "python": platform.python_version(),
                        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}}


class DirtyTreeError(RuntimeError):
    """A benchmark asked to write committed evidence from a tree with uncommitted changes."""


def uncommitted_changes(root=ROOT) -> list[str]:
    """Tracked files changed since the last commit (``git status --porcelain``), empty when the tree is clean."""
    import subprocess
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                         text=True, timeout=10)
    return [l[3:] for l in out.stdout.splitlines() if l.strip()] if out.returncode == 0 else []


def require_committed(allow_dirty: bool, what: str = "a benchmark", root=ROOT) -> None:
    """Refuse to write ``benchmarks/results`` from uncommitted changes unless ``allow_dirty`` (then the JSON's
    provenance says ``dirty`` and every generated table marks it)."""
    changed = uncommitted_changes(root)
    if changed and not allow_dirty:
        raise DirtyTreeError(f"{what}: the tree has uncommitted changes ({', '.join(changed[:5])}"
                             f"{' ...' if len(changed) > 5 else ''}); commit first, or pass --allow-dirty and the "
                             "results are marked so")


def repo_path(path) -> str:
    """``path`` relative to the repository when it lies inside it (results JSON carry no machine's paths)."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(path)


MODEL_KEYS = ("model", "asr_model")     # where a bench result names the recogniser it measured


def file_sha1(path, n: int = 12) -> str:
    """The first ``n`` hex digits of a file's SHA-1: which model a figure was measured on, by content."""
    import hashlib
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:n]


def model_file(path) -> "Path | None":
    """A result's model path as a file of this checkout: repository-relative paths, and absolute ones from
    another checkout (their part from ``data/models/`` on), resolve inside this repository first (another
    checkout on the same machine must not answer for this one)."""
    s = str(path)
    for cand in (ROOT / s[s.find("data/models/"):] if "data/models/" in s else None, ROOT / s, Path(s)):
        if cand is not None and cand.is_file():
            return cand
    return None


def _write_json(path, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp"
    tmp.write_text(json.dumps(data, indent=1, default=lambda o: o.tolist()))
    tmp.replace(path)


def save_bench(out_dir, name: str, result: dict, figures: dict | None = None, results_dir=None):
    """A benchmark's ``<name>.json`` (written beside, then moved into place: never half-written) and its
    figures (``{file name: matplotlib figure}``, closed after saving) into ``out_dir``; with ``results_dir``
    (the CLI's ``benchmarks/results``) the same JSON again there, the committed evidence the README's tables
    are generated from. Both carry ``provenance()`` and, where the result names its model file (``model`` or
    ``asr_model``), that file's SHA-1 prefix (``provenance.model_sha1``)."""
    import matplotlib.pyplot as plt
    out_dir = Path(out_dir)
    result.setdefault("provenance", provenance())
    found = next((f for f in (model_file(result[k]) for k in MODEL_KEYS if isinstance(result.get(k), str)) if f), None)
    if found:    # the figures name the model by content, so a later model makes them visibly stale
        result["provenance"]["model_sha1"] = file_sha1(found)
    _write_json(out_dir / f"{name}.json", result)
    if results_dir is not None:
        _write_json(Path(results_dir) / f"{name}.json", result)
    for fname, fig in (figures or {}).items():
        fig.savefig(out_dir / fname, dpi=120, bbox_inches="tight")
        plt.close(fig)
    return out_dir

