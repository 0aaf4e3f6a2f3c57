"""Quiet notebooks: NeMo and Lightning print a wall of INFO/WARNING lines each time a model loads, which
hides what a notebook or widget shows. In interactive use (an IPython kernel, which is also how papermill
runs the reports) the workbench turns their console output down to errors; their full logs still go to
the file named by ``WORKBENCH_LOG`` (the report runner points it at the day's ``report.log``).

One switch brings everything back: ``WORKBENCH_VERBOSE=1`` in the environment, or ``workbench.logs.verbose()``.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys

LIBRARY_LOGGERS = ("nemo_logger", "lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")
_FILE_HANDLERS: dict = {}


def interactive() -> bool:
    return "ipykernel" in sys.modules


def quiet(level: int = logging.ERROR) -> bool:
    """Library console output at ``level`` and above only; their records at INFO still reach
    ``$WORKBENCH_LOG``. Returns whether it quieted anything (False under ``WORKBENCH_VERBOSE=1``)."""
    if os.environ.get("WORKBENCH_VERBOSE") == "1":
        return False
    path = os.environ.get("WORKBENCH_LOG")
    for name in LIBRARY_LOGGERS:
        lg = logging.getLogger(name)
        for h in lg.handlers:
            if not isinstance(h, logging.FileHandler) and not isinstance(h, logging.handlers.MemoryHandler):
                h.setLevel(level)
        if path:
            lg.setLevel(min(lg.level or logging.INFO, logging.INFO))
            key = (name, path)
            if key not in _FILE_HANDLERS:
                fh = logging.FileHandler(path)
                fh.setLevel(logging.INFO)
                fh.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s [{name}] %(message)s"))
                lg.addHandler(fh)
                _FILE_HANDLERS[key] = fh
            lg.propagate = False
        else:
            lg.setLevel(max(lg.level, level))
    return True


def quiet_if_interactive() -> bool:
    """What the loaders call: quiet in a notebook or widget kernel, untouched on the command line."""
    return quiet() if interactive() else False


def verbose() -> None:
    """Everything back on the console (INFO), for this process."""
    os.environ["WORKBENCH_VERBOSE"] = "1"
    for name in LIBRARY_LOGGERS:
        lg = logging.getLogger(name)
        lg.setLevel(logging.INFO)
        for h in lg.handlers:
            h.setLevel(logging.INFO)
