"""The house's shape, checked like its behaviour: the rooms' layers and no circles (import-linter, contracts in
pyproject.toml), a linter that passes (ruff), and no room reaching into another room's private names."""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    exe = BIN / name
    if not exe.exists():
        exe = shutil.which(name)
    assert exe, f"{name} is not installed: make setup installs it from requirements.lock"
    return str(exe)


def test_the_import_contracts_hold():
    """Layers (a room imports only rooms below it), acyclic siblings (no circle between rooms or between a room's
    modules) and leaf benches: `lint-imports` prints which import broke which contract."""
    p = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert "0 broken" in p.stdout


def test_an_upward_import_breaks_the_layers(tmp_path):
    """The layers contract can fail: a copy of the package whose base module imports a room is refused."""
    pkg = tmp_path / "workbench"
    shutil.copytree(ROOT / "workbench", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "stats.py").write_text((pkg / "stats.py").read_text() + "\n\ndef _up():\n    from .asr import recipe  # noqa\n")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    p = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300, env={"PYTHONPATH": str(tmp_path), "PATH": str(BIN)})
    assert p.returncode != 0
    assert "workbench.stats -> workbench.asr" in p.stdout


def test_ruff_passes():
    p = subprocess.run([_tool("ruff"), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-4000:]


def private_reaches(package: Path) -> list[str]:
    """Every place a module of one room imports, or reads as an attribute of an imported module, a private
    (``_name``) of another room: ``file:line: what``."""
    def room(module: str) -> str:
        parts = module.split(".")
        return parts[1] if len(parts) > 1 else ""
    found = []
    for f in sorted(package.rglob("*.py")):
        rel = f.relative_to(package.parent).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        pkg = module if rel.name == "__init__" else module.rsplit(".", 1)[0]
        tree = ast.parse(f.read_text())
        names = {}
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom):
                base = pkg.split(".")[:len(pkg.split(".")) - n.level + 1] if n.level else []
                target = ".".join(base + ([n.module] if n.module else [])) if n.level else (n.module or "")
                if not target.startswith(package.name):
                    continue
                for a in n.names:
                    names[a.asname or a.name] = f"{target}.{a.name}"
                    if a.name.startswith("_") and room(target) != room(module):
                        found.append(f"{f.relative_to(package.parent)}:{n.lineno}: from {target} import {a.name}")
            elif isinstance(n, ast.Import):
                for a in n.names:
                    if a.name.startswith(package.name):
                        names[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        for n in ast.walk(tree):
            if (isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.attr.startswith("_")
                    and not n.attr.startswith("__") and n.value.id in names and room(names[n.value.id]) != room(module)):
                found.append(f"{f.relative_to(package.parent)}:{n.lineno}: {n.value.id}.{n.attr}")
    return found


def test_no_room_reaches_into_another_rooms_private_names():
    assert private_reaches(ROOT / "workbench") == []


@pytest.mark.parametrize("line", ["from ..repair.repair import _fillers", "from ..repair import repair as rp\nx = rp._fillers"])
def test_the_private_name_check_finds_a_planted_reach(tmp_path, line):
    pkg = tmp_path / "workbench"
    (pkg / "repair").mkdir(parents=True)
    (pkg / "s2s").mkdir()
    for d in (pkg, pkg / "repair", pkg / "s2s"):
        (d / "__init__.py").write_text("")
    (pkg / "repair" / "repair.py").write_text("def _fillers():\n    pass\n")
    (pkg / "repair" / "same_room.py").write_text("from .repair import _fillers\n")       # inside its room: allowed
    (pkg / "s2s" / "pipeline.py").write_text(line + "\n")
    assert [f.split(":")[0] for f in private_reaches(pkg)] == ["workbench/s2s/pipeline.py"]
