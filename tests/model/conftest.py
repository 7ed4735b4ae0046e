import json
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "checkpoints"
OFFICIAL = {"tiny": "seaformer_t.json", "small": "seaformer_s.json",
            "base": "seaformer_b.json", "large": "seaformer_l.json"}


def reference_layout(name: str) -> dict:
    """The official checkpoint layout (key -> shape) shipped in shared/reference."""
    path = REFERENCE / name
    if not path.is_file():
        pytest.fail(f"reference layout {path} is missing: the checkpoint tests need shared/ beside the repo")
    return json.loads(path.read_text())
