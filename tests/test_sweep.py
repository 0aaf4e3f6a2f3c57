"""The sweep on a small local Ray: cells run as Ray tasks in their own processes, a failing cell does not stop the
others and is shown with its error, a rerun skips what succeeded, and the comparison page and sweep.json are
written whole."""
import json
from pathlib import Path

import nbformat
import pytest
from conftest import patience

from workbench.__main__ import bench_argv_error
from workbench.reports.sweep import SweepError, load_grid, run_sweep


def _notebook(folder: Path) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('corpus_size = "smoke"\nsplit = "dev"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import os\nfrom workbench.data import ensure_corpus, open_dataset\nfrom workbench.reports import record\n"
        "ds = open_dataset(ensure_corpus(corpus_size), split)\n"
        "record('utterances', len(ds))\nrecord('pid', os.getpid())")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "tiny.ipynb")


def test_bad_grids_are_refused_before_anything_runs(tmp_path):
    _notebook(tmp_path)
    g = tmp_path / "g.yaml"
    for text, why in [("runs: []", "non-empty"), ("runs: [{notebook: nope}]", "no notebook"),
                      ("runs: [{notebook: tiny, grid: {seed: [1]}}]", "declares no parameter"),
                      ("runs: [{notebook: tiny, grid: {split: dev}}]", "non-empty list"),
                      ("runs: [{bench: nope}]", "invalid choice"), ("runs: [{bench: tts, grid: {bogus: [1]}}]", "unrecognized arguments: --bogus"),
                      ("runs: [{bench: tts, grid: {n: [many]}}]", "invalid int"),
                      ("resources: {tpus: 1}\nruns: [{notebook: tiny}]", "resources")]:
        g.write_text(text)
        with pytest.raises(SweepError, match=why):
            load_grid(g, tmp_path, bench_argv_error)
    g.write_text("runs: [{bench: tts}]")
    with pytest.raises(SweepError, match="needs check_bench"):
        load_grid(g, tmp_path)
    g.write_text("name: t\nruns: [{notebook: tiny, parameters: {corpus_size: smoke}, grid: {split: [dev, test]}}]")
    _, cells = load_grid(g, tmp_path)
    assert [c.key for c in cells] == ["tiny__split=dev", "tiny__split=test"]


@pytest.mark.slow
def test_sweep_runs_cells_on_ray_keeps_going_past_a_failure_and_resumes(tmp_path):
    _notebook(tmp_path)
    g = tmp_path / "grid.yaml"
    g.write_text("name: tiny\nresources: {num_cpus: 1}\ntimeout: 300\n"
                 "runs:\n  - notebook: tiny\n    grid: {corpus_size: [smoke, no-such-size]}\n")
    out = tmp_path / "reports"
    res = run_sweep(g, out_root=out, date="d", num_cpus=2, notebook_dir=tmp_path)
    folder = out / "d" / "sweep-tiny"
    by = {c["key"]: c for c in res["cells"]}
    ok, bad = by["tiny__corpus_size=smoke"], by["tiny__corpus_size=no-such-size"]
    assert ok["status"] == "ok" and ok["metrics"]["utterances"]["value"] > 0
    assert bad["status"] == "failed" and "no-such-size" in bad["error"]["evalue"]
    assert not res["ok"]
    # each cell ran in a process of its own, not in the driver
    import os
    assert ok["metrics"]["pid"]["value"] != os.getpid()
    assert (folder / ok["key"] / "tiny.html").is_file() and (folder / ok["key"] / "result.json").is_file()
    page = (folder / "index.html").read_text()
    assert "no-such-size" in page and "utterances" in page
    assert json.loads((folder / "sweep.json").read_text())["cells"] == res["cells"]
    assert not list(folder.glob(".*.tmp-*"))
    # the rerun skips the cell that succeeded (its files untouched) and runs the failed one again
    stamp = (folder / ok["key"] / "result.json").stat().st_mtime_ns
    again = run_sweep(g, out_root=out, date="d", num_cpus=2, notebook_dir=tmp_path)
    by2 = {c["key"]: c for c in again["cells"]}
    assert by2[ok["key"]]["status"] == "skipped" and by2[bad["key"]]["status"] == "failed"
    assert (folder / ok["key"] / "result.json").stat().st_mtime_ns == stamp
    assert by2[bad["key"]]["finished"] != bad["finished"] or by2[bad["key"]]["duration_s"] >= 0


def test_cli_refuses_a_bad_grid_with_exit_2(tmp_path, capsys):
    from workbench.__main__ import main
    g = tmp_path / "g.yaml"
    g.write_text("runs: [{notebook: no_such_notebook}]")
    assert main(["sweep", str(g), "--out", str(tmp_path)]) == 2
    assert "no notebook" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2


def test_the_shipped_sweeps_are_valid_grids():
    grids = sorted((Path(__file__).resolve().parents[1] / "notebooks" / "sweeps").glob("*.yaml"))
    assert grids
    for g in grids:
        settings, cells = load_grid(g, check_bench=bench_argv_error)
        assert cells and settings["name"]


def test_ctrl_c_cancels_the_running_cell_keeps_the_finished_one_and_leaves_nothing_half_written(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("seconds = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "import time\nfrom workbench.reports import record\ntime.sleep(seconds)\nrecord('slept', seconds)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "slow.ipynb")
    g = tmp_path / "grid.yaml"
    g.write_text("name: slow\nresources: {num_cpus: 1}\ntimeout: 600\n"
                 "runs:\n  - notebook: slow\n    grid: {seconds: [1, 300]}\n")
    out, folder = tmp_path / "reports", tmp_path / "reports" / "d" / "sweep-slow"
    driver = (f"from pathlib import Path\nfrom workbench.reports.sweep import run_sweep\n"
              f"run_sweep({str(g)!r}, out_root={str(out)!r}, date='d', num_cpus=2, notebook_dir=Path({str(tmp_path)!r}))")
    # the driver gets SIGINT's default disposition whatever this test runs under: a runner that starts the suite
    # in the background (`make test &`, nohup, CI agents) passes SIGINT on *ignored*, and Python then never raises
    # KeyboardInterrupt: the sweep ran its 300 s cell to the end and the test failed on a busy clone
    p = subprocess.Popen([sys.executable, "-c", driver], cwd=tmp_path, env={**os.environ},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + patience(400)
        while time.time() < deadline and p.poll() is None:
            if (folder / "slow__seconds=1" / "result.json").is_file() and list(folder.glob(".slow__seconds=300.tmp-*")):
                break
            time.sleep(1)
        assert p.poll() is None, "the sweep ended before it could be interrupted:\n" + p.stdout.read()[-3000:]
        assert list(folder.glob(".slow__seconds=300.tmp-*")), "the long cell never started"
        p.send_signal(signal.SIGINT)
        log, _ = p.communicate(timeout=patience(120))
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode != 0, log[-3000:]
    assert "interrupted" in log
    assert not list(folder.glob(".*.tmp-*")), "a half-written cell was left behind"
    assert not (folder / "slow__seconds=300").exists()
    res = json.loads((folder / "sweep.json").read_text())
    by = {c["key"]: c for c in res["cells"]}
    assert by["slow__seconds=1"]["status"] == "ok" and by["slow__seconds=300"]["status"] == "cancelled"
    assert not res["ok"] and (folder / "index.html").is_file()
    assert (folder / "slow__seconds=1" / "slow.html").is_file()
