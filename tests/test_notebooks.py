"""Every notebook in notebooks/ runs in smoke mode through the report runner, and is committed clean."""
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code), "no cell tagged parameters"
    assert not any(c.get("outputs") or c.get("execution_count") for c in code), "committed with outputs"
    assert any("Exercise" in "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


@pytest.mark.slow
def test_all_notebooks_run_in_smoke_mode(tmp_path):
    from workbench.reports.runner import run_reports
    res = run_reports(param_file=REPO / "notebooks" / "smoke.yaml", out_root=tmp_path, date="smoke")
    failures = {r.name: r.error for r in res.failures}
    assert not failures, failures
    assert {r.name for r in res.results} == {p.stem for p in NOTEBOOKS}
    index = (tmp_path / "smoke" / "index.html").read_text()
    for p in NOTEBOOKS:
        assert p.stem in index
    tour = next(r for r in res.results if r.name == "00_corpus_tour")
    assert tour.figures and tour.metrics["utterances"]["value"] == 40
