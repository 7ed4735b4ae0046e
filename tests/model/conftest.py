import json
from pathlib import Path

import pytest

# Key -> shape layouts of the official SeaFormer and PANNs checkpoints (no weights): see its README.md.
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "checkpoints"
OFFICIAL = {"tiny": "seaformer_t.json", "small": "seaformer_s.json",
            "base": "seaformer_b.json", "large": "seaformer_l.json"}


def reference_layout(name: str) -> dict:
    """The official checkpoint layout (key -> shape) kept in tests/data/checkpoints."""
    path = REFERENCE / name
    if not path.is_file():
        pytest.fail(f"reference layout {path} is missing (it is part of the repository: tests/data/checkpoints)")
    return json.loads(path.read_text())
