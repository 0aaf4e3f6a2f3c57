"""Writing without half-written results: a new folder (a model export, a corpus) is built beside the old
one and swapped in, so a crash at any point leaves either the old complete folder or the new one."""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def replace_dir(tmp: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Move the complete folder ``tmp`` to ``final``. An existing ``final`` is renamed aside first and only
    deleted once the new one is in place; if the swap fails, the old one is put back."""
    tmp, final = Path(tmp), Path(final)
    if not tmp.is_dir():
        raise FileNotFoundError(f"nothing to move into place: {tmp} is not a folder")
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    try:
        tmp.rename(final)
    except BaseException:
        if old is not None and not final.exists():
            old.rename(final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` whole: into a file of this process's own beside it, then renamed over it, so a
    reader (or another process writing the same file) never sees it half-written."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path
