"""`pip install` ships the package, cli.py, kernels/ and the target YAML files, and the
`edgeavs` console script."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contents(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("edgeavs-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "cli.py" in names
    assert "edgeavs/__init__.py" in names and "edgeavs/model/seaformer.py" in names
    assert "kernels/__init__.py" in names
    for yaml_file in (ROOT / "targets").glob("*.yaml"):
        assert f"targets/{yaml_file.name}" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "edgeavs = cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
