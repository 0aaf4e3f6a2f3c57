"""The report runner: parameters, metrics, failures that do not stop the run or overwrite good reports, the lock."""
import json
import threading

import nbformat
import pytest

from workbench.reports import METRIC_MIME, metrics_of, record
from workbench.reports.runner import ReportError, day_lock, parse_parameters, run_reports


def make_nb(path, body, params="x = 1"):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), p, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_record_payload_and_numpy_values():
    import numpy as np
    p = record("wer", np.float32(0.125), "%", display=False)
    assert p == {"name": "wer", "value": 0.125, "unit": "%"}
    assert record("curve", np.arange(3), display=False)["value"] == [0, 1, 2]
    with pytest.raises(TypeError):
        record("bad", object(), display=False)
    with pytest.raises(ValueError):
        record("", 1, display=False)


def test_metrics_of_reads_display_data():
    nb = nbformat.v4.new_notebook()
    c = nbformat.v4.new_code_cell("")
    c.outputs = [nbformat.v4.new_output("display_data", data={METRIC_MIME: {"name": "a", "value": 1, "unit": None}}),
                 nbformat.v4.new_output("display_data", data={METRIC_MIME: {"name": "a", "value": 2, "unit": "s"}})]
    nb.cells = [c]
    assert metrics_of(nb) == {"a": {"value": 2, "unit": "s"}}


def test_parameters_from_file_and_command_line(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("parameters: {n: 1, mode: fast}\nnotebooks:\n  nb_a: {n: 5}\n")
    common, per = parse_parameters([("n", "3"), ("flag", "true"), ("name", "hello world")], f)
    assert common == {"n": 3, "mode": "fast", "flag": True, "name": "hello world"}
    assert per == {"nb_a": {"n": 5}}
    f.write_text("n: 1\n")
    with pytest.raises(ReportError, match="parameters"):
        parse_parameters([], f)
    with pytest.raises(ReportError, match="not found"):
        parse_parameters([], tmp_path / "missing.yaml")


def test_run_failures_and_good_reports_kept(tmp_path):
    nbs, out = tmp_path / "nbs", tmp_path / "reports"
    nbs.mkdir()
    make_nb(nbs / "a_ok.ipynb", "from workbench.reports import record\nrecord('twice_x', 2 * x, 'units')")
    make_nb(nbs / "b_fails.ipynb", "raise ValueError('boom in b')")
    make_nb(nbs / "c_ok.ipynb", "y = x + 1")
    res = run_reports(params=[("x", "21")], out_root=out, date="d1", notebook_dir=nbs)
    assert not res.ok and [r.name for r in res.failures] == ["b_fails"]
    by = {r.name: r for r in res.results}
    assert by["a_ok"].metrics == {"twice_x": {"value": 42, "unit": "units"}}
    assert by["a_ok"].parameters == {"x": 21}                      # only what the notebook declares
    assert by["b_fails"].error["ename"] == "ValueError" and by["b_fails"].error["cell"] == 2
    assert "boom in b" in by["b_fails"].error["source"] + by["b_fails"].error["evalue"]
    assert by["c_ok"].status == "ok"                                # ran after the failure
    day = out / "d1"
    for f in ("a_ok.ipynb", "a_ok.html", "c_ok.html", "b_fails.failed.html", "index.html", "summary.json", "report.log"):
        assert (day / f).is_file(), f
    index = (day / "index.html").read_text()
    assert "boom in b" in index and "cell 2" in index and "twice_x" in index
    summary = json.loads((day / "summary.json").read_text())
    assert summary["ok"] is False and [n["name"] for n in summary["notebooks"]] == ["a_ok", "b_fails", "c_ok"]

    # a later failing run of a notebook that was good keeps the good rendering
    good_html = (day / "a_ok.html").read_text()
    make_nb(nbs / "a_ok.ipynb", "raise RuntimeError('regressed')")
    res2 = run_reports(["a_ok"], params=[("x", "1")], out_root=out, date="d1", notebook_dir=nbs)
    assert not res2.ok
    assert (day / "a_ok.html").read_text() == good_html
    assert "regressed" in (day / "a_ok.failed.html").read_text()
    s2 = {n["name"]: n for n in json.loads((day / "summary.json").read_text())["notebooks"]}
    assert s2["a_ok"]["status"] == "failed" and s2["a_ok"]["last_ok"]["metrics"]["twice_x"]["value"] == 42
    assert "c_ok" in s2                                             # notebooks not rerun stay listed
    assert "earlier good run kept" in (day / "index.html").read_text()
    assert not list(out.glob(".staging-*"))


def test_a_parameter_no_notebook_declares_is_refused(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    make_nb(nbs / "a.ipynb", "pass", params="corpus_size = 'default'\nn_eval = 3")
    with pytest.raises(ReportError, match=r"\['corpus_sise'\].*declared: \['corpus_size', 'n_eval'\]"):
        run_reports(params=[("corpus_sise", "smoke")], out_root=tmp_path / "o", notebook_dir=nbs)
    f = tmp_path / "p.yaml"
    f.write_text("notebooks:\n  a: {n_evl: 2}\n")
    with pytest.raises(ReportError, match="n_evl"):
        run_reports(param_file=f, out_root=tmp_path / "o", notebook_dir=nbs)
    assert not (tmp_path / "o").exists(), "refused before anything ran or was written"


def test_a_rendering_failure_fails_that_notebook_only(tmp_path, monkeypatch):
    from workbench.reports import runner
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    make_nb(nbs / "a.ipynb", "y = 1")
    make_nb(nbs / "b.ipynb", "y = 2")
    real = runner._to_html

    def flaky(nb, no_input):
        if any("y = 1" in "".join(c.get("source", "")) for c in nb.cells):
            raise ValueError("template exploded")
        return real(nb, no_input)
    monkeypatch.setattr(runner, "_to_html", flaky)
    res = run_reports(out_root=tmp_path / "o", date="d", notebook_dir=nbs)
    by = {r.name: r for r in res.results}
    assert by["a"].status == "failed" and "template exploded" in by["a"].error["evalue"]
    assert by["b"].status == "ok" and (tmp_path / "o" / "d" / "b.html").is_file()


def test_unknown_notebook_and_lock(tmp_path):
    with pytest.raises(ReportError, match="not found"):
        run_reports(["nope"], out_root=tmp_path, notebook_dir=tmp_path)
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    make_nb(nbs / "a.ipynb", "pass")
    held, release = threading.Event(), threading.Event()

    def hold():
        with day_lock(tmp_path / "out" / "d2"):
            held.set()
            release.wait(30)
    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    try:
        with pytest.raises(ReportError, match="another report run"):
            run_reports(out_root=tmp_path / "out", date="d2", notebook_dir=nbs)
    finally:
        release.set()
        t.join()
    assert not (tmp_path / "out" / "d2").exists()


def test_cli_exit_codes(tmp_path, monkeypatch):
    from workbench.__main__ import main
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    make_nb(nbs / "bad.ipynb", "1/0")
    assert main(["report", str(nbs / "bad.ipynb"), "--out", str(tmp_path / "o"), "--date", "d"]) == 1
    assert main(["report", "nope", "--out", str(tmp_path / "o")]) == 2


def test_readme_figures_are_generated_from_the_committed_results():
    """The README's benchmark tables are exactly what the committed JSON gives (python -m workbench figures)."""
    from workbench.reports.figures import README, render
    text = README.read_text()
    for name in ("batching", "endpoint", "asr"):
        assert f"<!-- figures:{name} -->" in text, name
    assert render(text) == text, "README out of date: run `python -m workbench figures`"


def test_figures_render_a_block_from_a_result(tmp_path):
    from workbench.reports.figures import main
    (tmp_path / "r").mkdir()
    readme = tmp_path / "README.md"
    readme.write_text("x\n<!-- figures:asr -->\nold\n<!-- /figures:asr -->\ny\n")
    assert main(check=True, readme=readme, results=tmp_path / "r") == 1     # "old" is not what the results give
    main(readme=readme, results=tmp_path / "r")
    assert "bench_asr.json missing" in readme.read_text() and main(check=True, readme=readme, results=tmp_path / "r") == 0


def test_bench_results_name_their_model_by_content_and_stale_figures_say_so(tmp_path):
    """save_bench fingerprints the model a result names; the README line says whether that is today's file."""
    import json
    from workbench.results import file_sha1, save_bench
    from workbench.reports.figures import _prov
    model = tmp_path / "model.nemo"
    model.write_bytes(b"weights v1")
    save_bench(tmp_path / "out", "bench_x", {"asr_model": str(model), "wer": 0.5})
    saved = json.loads((tmp_path / "out" / "bench_x.json").read_text())
    sha = saved["provenance"]["model_sha1"]
    assert sha == file_sha1(model) and len(sha) == 12
    assert f"Model `{sha}`" in _prov(saved, "cmd") and "earlier model" not in _prov(saved, "cmd")
    model.write_bytes(b"weights v2")                       # a new model shipped, the figures not rerun
    note = _prov(saved, "cmd")
    assert "**Measured on an earlier model** (`" + sha in note and file_sha1(model) in note
    save_bench(tmp_path / "out", "bench_y", {"model": str(tmp_path / "absent.nemo")})
    assert "model_sha1" not in json.loads((tmp_path / "out" / "bench_y.json").read_text())["provenance"]


def test_a_dead_kernel_is_run_again_only_when_asked_and_a_raising_cell_never(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    marker = tmp_path / "died-once"
    # the kernel dies on its first run only (the marker survives it), as a kernel lost to the machinery would
    make_nb(nbs / "a_dies_once.ipynb", f"import os, pathlib\nm = pathlib.Path({str(marker)!r})\n"
                                        "if not m.exists():\n    m.touch()\n    os._exit(1)\nrecord_ok = True")
    res = run_reports(out_root=tmp_path / "o0", date="d", notebook_dir=nbs)
    assert [r.error["ename"] for r in res.failures] == ["DeadKernelError"]
    marker.unlink()
    res = run_reports(out_root=tmp_path / "o1", date="d", notebook_dir=nbs, retries=1)
    assert res.ok and marker.exists()
    assert "running it again" in (tmp_path / "o1" / "d" / "report.log").read_text()
    make_nb(nbs / "b_raises.ipynb", "raise ValueError('boom')")
    res = run_reports(["b_raises"], out_root=tmp_path / "o2", date="d", notebook_dir=nbs, retries=1)
    assert [r.name for r in res.failures] == ["b_raises"]
    assert "running it again" not in (tmp_path / "o2" / "d" / "report.log").read_text()


def test_committed_evidence_is_refused_from_a_dirty_tree_unless_allowed(tmp_path):
    import subprocess
    from workbench.results import DirtyTreeError, require_committed, uncommitted_changes
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)
    run("init", "-q")
    (tmp_path / "bench.py").write_text("x = 1\n")
    run("add", "bench.py")
    run("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "one")
    require_committed(False, root=tmp_path)                   # clean: nothing to say
    (tmp_path / "notes.txt").write_text("untracked files do not count\n")
    require_committed(False, root=tmp_path)
    (tmp_path / "bench.py").write_text("x = 2\n")
    assert uncommitted_changes(tmp_path) == ["bench.py"]
    with pytest.raises(DirtyTreeError, match=r"uncommitted changes \(bench.py\).*--allow-dirty"):
        require_committed(False, "bench asr", root=tmp_path)
    require_committed(True, root=tmp_path)                    # asked for: runs, and provenance says dirty
