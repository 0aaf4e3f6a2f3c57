"""Shared fixtures. Corpora built by the tests (and by notebooks the tests run) go to a temporary
folder through WORKBENCH_CORPUS_ROOT, never into the user's data/."""
import os
import shutil
import tempfile
from pathlib import Path

_ROOT = tempfile.mkdtemp(prefix="workbench-test-corpora-")
os.environ["WORKBENCH_CORPUS_ROOT"] = _ROOT   # before workbench is imported (and inherited by kernels)

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def corpus_root() -> Path:
    return Path(_ROOT)


@pytest.fixture(scope="session")
def smoke_corpus(corpus_root) -> Path:
    from workbench.data import build_corpus
    return build_corpus("smoke", seed=0, root=corpus_root, progress=False)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_ROOT, ignore_errors=True)
