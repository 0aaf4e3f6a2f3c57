"""Workshop exercises: the checks accept the reference solutions and refuse the students' stubs and wrong answers
with an ExerciseError that says why; the workshop writes a student copy without solutions and a teacher copy.
(The notebooks' smoke runs pass every reference solution through its check on real models.)"""
import json

import nbformat
import numpy as np
import pytest

from workbench.exercises import ExerciseError, check_08_truncation_repair, check_09_look_to_talk, \
    check_10_ltts_sleepy, solutions
from workbench.exercises.workshop import WorkshopError, write_workshop
from conftest import REPO


def _cues(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    scales, useful = np.array([1.0, 10.0, 0.1]), np.array([1.2, 0.0, 1.2])   # the loud cue says nothing
    L = (y[:, None] * useful + rng.normal(size=(n, 3))) * scales
    D = (rng.integers(0, 2, n)[:, None] * useful + rng.normal(size=(n, 3))) * scales
    return L, D, y


def test_the_mean_rule_passes_and_wrong_fusions_are_told_why():
    L, D, y = _cues()
    res = check_09_look_to_talk(solutions.mean_rule(D), L, y)
    assert res["eer"] < res["best_single_eer"]
    with pytest.raises(ExerciseError, match="standardise"):          # unscaled: the 10x cue drowns the others
        check_09_look_to_talk(lambda lg, present=(True, True, True): np.asarray(lg)[:, np.asarray(present)].mean(1), L, y)
    with pytest.raises(ExerciseError, match="only cue 0 present"):
        check_09_look_to_talk(lambda lg, present=(True, True, True): np.asarray(lg).sum(1), L, y)
    with pytest.raises(ExerciseError, match="one finite score per utterance"):
        check_09_look_to_talk(lambda lg, present=(True, True, True): None, L, y)


def test_a_new_delivery_is_measured_through_the_target_voice():
    res = check_10_ltts_sleepy(solutions.sleepy_style())
    assert res["change"]["volume"] <= -3
    from workbench.tts.styles import DELIVERIES, Style
    assert "sleepy" not in DELIVERIES                               # the check leaves the table as it was
    with pytest.raises(ExerciseError, match="slower"):
        check_10_ltts_sleepy(Style(rate=100, pitch=100, range=100, volume=50))
    with pytest.raises(ExerciseError, match="number"):
        check_10_ltts_sleepy(Style(rate=..., pitch=..., range=..., volume=...))
    assert "sleepy" not in DELIVERIES


def test_the_alarm_default_passes_and_the_stub_is_refused():
    from workbench.repair.parser import load_parser
    parser = load_parser(device="cpu")
    assert ("set-alarm", ":date", "tomorrow", "default") in check_08_truncation_repair(solutions.alarm_defaults(), parser)["recovered"]
    with pytest.raises(ExerciseError, match="should be a dict"):
        check_08_truncation_repair(..., parser)
    from workbench.repair import DEFAULTS
    with pytest.raises(ExerciseError, match="not recovered"):
        check_08_truncation_repair(dict(DEFAULTS), parser)


def test_workshop_writes_a_student_copy_without_solutions_and_a_teacher_copy(tmp_path):
    res = write_workshop(tmp_path / "ws")
    assert res["notebooks"] == len(list((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    n_solutions = sum(res["solutions"].values())
    assert all(n >= 1 for n in res["solutions"].values()), res["solutions"]
    seen = 0
    for p in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        student = nbformat.read(tmp_path / "ws" / "student" / p.name, 4)
        teacher = nbformat.read(tmp_path / "ws" / "teacher" / p.name, 4)
        for c in student.cells:
            assert "solution" not in c.metadata.get("tags", []) and "solutions." not in c.source, p.name
        checks = [c for c in nbformat.read(p, 4).cells if "from workbench.exercises import check_" in c.source]
        assert len(checks) == sum("from workbench.exercises import check_" in c.source for c in student.cells)
        seen += sum(c.source.startswith("# --- your solution ---") for c in student.cells)
        notes = sum("Teacher's note" in c.source for c in teacher.cells)
        assert notes == res["solutions"][p.stem]
        assert all(not c.get("outputs") for c in student.cells + teacher.cells if c.cell_type == "code")
    assert seen == n_solutions
    assert (tmp_path / "ws" / "student" / "smoke.yaml").is_file()
    assert not list(tmp_path.glob(".ws.tmp-*"))


def test_a_solution_cell_without_a_stub_is_refused_and_nothing_is_written(tmp_path):
    nb = nbformat.v4.new_notebook()
    c = nbformat.v4.new_code_cell("answer = solutions.no_such_solution()")
    c.metadata["tags"] = ["solution"]
    nb.cells = [c]
    (tmp_path / "nbs").mkdir()
    nbformat.write(nb, tmp_path / "nbs" / "00_x.ipynb")
    with pytest.raises(WorkshopError, match="00_x.ipynb.*no_such_solution"):
        write_workshop(tmp_path / "ws", notebooks=tmp_path / "nbs")
    assert not (tmp_path / "ws").exists() and not list(tmp_path.glob(".ws.tmp-*"))


def test_every_stub_names_a_reference_solution():
    assert set(solutions.STUBS) <= {n for n in dir(solutions) if not n.startswith("_")}
    assert json.dumps(solutions.STUBS)


def test_the_longest_pause_is_found_and_near_misses_are_told_apart(smoke_corpus):
    from workbench.data import open_dataset
    from workbench.exercises import check_00_corpus_tour
    ds = open_dataset(smoke_corpus, "test")
    ref = solutions.longest_pause(ds)
    assert check_00_corpus_tour(ref, ds)["pause_s"] == pytest.approx(ref["pause_s"])
    other = next(i for i, e in enumerate(ds.entries) if i != ref["index"])
    e = ds.entries[other]
    theirs = max((p["end"] - p["start"] for p in e["pauses"]), default=0.0)
    with pytest.raises(ExerciseError, match="has a longer pause"):
        check_00_corpus_tour({"index": other, "pause_s": theirs}, ds)
    with pytest.raises(ExerciseError, match="not"):
        check_00_corpus_tour({"index": ref["index"], "pause_s": ref["pause_s"] + 0.1}, ds)
    with pytest.raises(ExerciseError, match="answer with"):
        check_00_corpus_tour({"index": ...}, ds)


def test_a_second_microphone_consumer_sees_every_block_once():
    from workbench.exercises import check_06_live_demo
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 16000 + 700).astype(np.float32)
    sizes = solutions.block_sizes(audio, 100)
    assert check_06_live_demo(sizes, audio, 100)["blocks"] == 11
    with pytest.raises(ExerciseError, match="every block seen once"):
        check_06_live_demo(sizes + sizes[:1], audio, 100)
    with pytest.raises(ExerciseError, match="1600 samples"):
        check_06_live_demo([800] * 20 + [700], audio, 100)


def test_tuning_on_dev_picks_the_fewest_cut_offs_within_the_budget_and_the_stub_is_told_why():
    from types import SimpleNamespace
    from workbench.exercises import check_05_endpoint_tuning
    curve = [{"setting": 300.0, "EP90_ms": 450.0, "cutoff_rate": 0.40}, {"setting": 500.0, "EP90_ms": 650.0, "cutoff_rate": 0.25},
             {"setting": 700.0, "EP90_ms": 850.0, "cutoff_rate": 0.10}]
    tuner = SimpleNamespace(curves={"pause": curve})          # the tuner's curves as EndpointTuner.rescore leaves them
    assert solutions.pause_within_budget(tuner, 700) == 500.0
    assert check_05_endpoint_tuning(500.0, tuner, 700)["cutoff_rate"] == 0.25
    with pytest.raises(ExerciseError, match="cuts off 40.0 %"):
        check_05_endpoint_tuning(300.0, tuner, 700)
    with pytest.raises(ExerciseError, match="over the budget"):
        check_05_endpoint_tuning(700.0, tuner, 700)
    with pytest.raises(ExerciseError, match="should be a number"):
        check_05_endpoint_tuning(..., tuner, 700)
    # a budget no setting meets (the default corpus with a weak recogniser): the answer is None, said so
    assert solutions.pause_within_budget(tuner, 400) is None
    out = check_05_endpoint_tuning(None, tuner, 400)
    assert out["pause_ms"] is None and "lowest EP90 is 450 ms, at 300.0 ms" in out["why"]
    with pytest.raises(ExerciseError, match="the answer is None"):
        check_05_endpoint_tuning(300.0, tuner, 400)
    with pytest.raises(ExerciseError, match="should be a number"):
        check_05_endpoint_tuning(None, tuner, 700)


def test_the_students_stubs_are_refused_with_an_exercise_error_not_a_crash(smoke_corpus):
    """What a student sees before writing anything: the stub's own names, run through the check."""
    from workbench.data import open_dataset
    from workbench.exercises import check_00_corpus_tour, check_06_live_demo
    ns: dict = {}
    exec(solutions.STUBS["longest_pause"], ns)
    with pytest.raises(ExerciseError, match="answer with"):
        check_00_corpus_tour(ns["longest"], open_dataset(smoke_corpus, "test"))
    exec(solutions.STUBS["block_sizes"], ns)
    with pytest.raises(ExerciseError, match="answer with"):
        check_06_live_demo(ns["sizes"], np.zeros(1600, np.float32))
    exec(solutions.STUBS["alarm_defaults"], ns)
    with pytest.raises(ExerciseError, match="should be a dict"):
        check_08_truncation_repair(ns["my_defaults"], parser=None)
    exec(solutions.STUBS["mean_rule"], ns)
    L, _, y = _cues()
    with pytest.raises(ExerciseError, match="one finite score"):
        check_09_look_to_talk(ns["mean_rule"], L, y)
