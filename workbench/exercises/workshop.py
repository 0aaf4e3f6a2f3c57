"""``python -m workbench workshop OUT``: a student copy of the notebooks (each solution cell replaced by a stub,
the checks kept) and a teacher copy (the notebooks as committed, each solution followed by its source), outputs
cleared. Written beside ``OUT`` and moved into place whole."""
from __future__ import annotations

import inspect
import os
import re
import shutil
from pathlib import Path

import nbformat

from ..files import replace_dir
from . import solutions

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
_CALL = re.compile(r"=\s*solutions\.(\w+)")


class WorkshopError(ValueError):
    """A notebook's solution cell that the workshop cannot turn into a stub."""


def _solution_name(cell, name: str) -> str:
    names = _CALL.findall(cell.source)
    if len(names) != 1 or names[0] not in solutions.STUBS:
        raise WorkshopError(f"{name}: a solution cell must assign from exactly one function of "
                            f"workbench/exercises/solutions.py that has a stub in STUBS; found {names}")
    return names[0]


def _is_solution(cell) -> bool:
    return cell.cell_type == "code" and "solution" in cell.metadata.get("tags", [])


def student_copy(nb, name: str = "notebook"):
    """The notebook with every cell tagged ``solution`` replaced by its stub; outputs cleared."""
    nb = nbformat.from_dict(nb)
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
            if _is_solution(c):
                c.source = "# --- your solution ---\n" + solutions.STUBS[_solution_name(c, name)]
                c.metadata["tags"] = [t for t in c.metadata["tags"] if t != "solution"] + ["exercise"]
    return nb


def teacher_copy(nb, name: str = "notebook"):
    """The notebook as committed, each solution cell followed by the reference solution's source."""
    nb = nbformat.from_dict(nb)
    out = []
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
        out.append(c)
        if _is_solution(c):
            src = inspect.getsource(getattr(solutions, _solution_name(c, name)))
            out.append(nbformat.v4.new_markdown_cell(f"**Teacher's note**: the reference solution "
                                                     f"(`workbench/exercises/solutions.py`)\n```python\n{src}```"))
    nb.cells = out
    return nb


def write_workshop(out: str | os.PathLike, notebooks: Path = NOTEBOOKS) -> dict:
    """``out/student`` and ``out/teacher``, each with every notebook and ``smoke.yaml``; returns what was written."""
    out = Path(out)
    src = sorted(Path(notebooks).glob("[0-9][0-9]_*.ipynb"))
    if not src:
        raise WorkshopError(f"no notebooks in {notebooks}")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    counts = {}
    try:
        for who in ("student", "teacher"):
            (tmp / who).mkdir(parents=True)
            if (Path(notebooks) / "smoke.yaml").is_file():
                shutil.copy(Path(notebooks) / "smoke.yaml", tmp / who / "smoke.yaml")
        for p in src:
            nb = nbformat.read(p, 4)
            nbformat.write(student_copy(nb, p.name), tmp / "student" / p.name)
            nbformat.write(teacher_copy(nb, p.name), tmp / "teacher" / p.name)
            counts[p.stem] = sum(map(_is_solution, nb.cells))
        replace_dir(tmp, out)           # an earlier workshop folder stays until this one is complete
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"out": str(out), "notebooks": len(src), "solutions": counts}
