"""The import contracts (pyproject.toml ``[tool.importlinter]``) hold, and they bite.

``lint-imports`` passes on the tree; the same tree with a tuner import added inside
``edgeavs/passes/`` fails, naming the contract and the import; and there is no import circle
among the modules (``python -m tests.import_cycles``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.import_cycles import import_cycles

ROOT = Path(__file__).resolve().parents[1]
TUNER_CONTRACT = "The compiler, the passes and the kernels never import the tuner"


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    # --no-cache: no .import_linter_cache folder left in the tree
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    return subprocess.run([sys.executable, "-c", code, "--no-cache", "--no-logo"], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_lint_imports_passes():
    proc = _lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "BROKEN" not in proc.stdout and "Contracts:" in proc.stdout


def test_a_tuner_import_in_the_passes_breaks_the_contract(tmp_path):
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so")
    for package in ("edgeavs", "kernels"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    victim = tmp_path / "edgeavs" / "passes" / "hsigmoid.py"
    text = victim.read_text()
    assert "edgeavs.tune" not in text  # the line below is the file's only tuner import
    victim.write_text(text.rstrip("\n") + "\nfrom edgeavs.tune import knobs  # noqa: E402,F401\n")
    line = len(victim.read_text().splitlines())

    proc = _lint_imports(tmp_path)
    assert proc.returncode != 0, proc.stdout[-4000:]
    assert f"{TUNER_CONTRACT} BROKEN" in proc.stdout, proc.stdout[-4000:]
    # the report names the planted import: module, target and line
    planted = re.compile(rf"edgeavs\.passes\.hsigmoid -> edgeavs\.tune(\.knobs)? \(l\.{line}\)")
    assert planted.search(proc.stdout), proc.stdout[-4000:]


def test_no_import_circle():
    cycles = import_cycles()
    assert cycles == [], "\n".join(" ".join(c) for c in cycles)


def test_import_cycles_finds_a_circle(tmp_path, monkeypatch):
    """The circle finder itself, on a made-up package: a -> b -> c -> a is one circle; d -> a and
    a module importing itself (e) are found as what they are."""
    pkg = tmp_path / "circlepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from circlepkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from circlepkg import c  # inside a function: counts too\n")
    (pkg / "c.py").write_text("import circlepkg.a\n")
    (pkg / "d.py").write_text("from circlepkg import a\n")
    (pkg / "e.py").write_text("import circlepkg.e\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles(("circlepkg",)) == [["circlepkg.a", "circlepkg.b", "circlepkg.c"], ["circlepkg.e"]]
