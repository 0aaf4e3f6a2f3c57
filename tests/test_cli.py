import subprocess
import sys
import time


def test_help_lists_commands_and_is_fast():
    t0 = time.time()
    out = subprocess.run([sys.executable, "-m", "workbench", "--help"], capture_output=True, text=True, check=True)
    assert time.time() - t0 < 5          # heavy imports stay inside the commands
    for cmd in ("corpus", "report"):
        assert cmd in out.stdout


def test_corpus_command(tmp_path):
    out = subprocess.run([sys.executable, "-m", "workbench", "corpus", "--size", "smoke", "--root", str(tmp_path)],
                         capture_output=True, text=True, check=True)
    assert "train 24 utt" in out.stdout and (tmp_path / "smoke" / "corpus.json").is_file()
    again = subprocess.run([sys.executable, "-m", "workbench", "corpus", "--size", "smoke", "--root", str(tmp_path)],
                           capture_output=True, text=True, check=True)
    assert "already built" in again.stdout
