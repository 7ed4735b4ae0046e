"""Mutation fuzzing of every file the CLI reads: each case ends accepted or as a one-line EdgeAVSError.

Per kind (``tests.fuzz.targets``), seeded mutations of a valid seed file (``tests.fuzz.seeds``) go through the
library entry point the CLI uses, in child processes (``tests.fuzz.runner``): any other exception type, a
multi-line message, a hang or a signal is a failure that prints the case and the command reproducing it.

``EDGEAVS_FUZZ_CASES`` sets the cases per kind (default: 200; 40 for artifact-so and 100 for checkpoint, whose
cases each write and load tens of MB), ``EDGEAVS_FUZZ_SEED`` the seed (default 0). Longer runs:
``python -m tests.fuzz --cases 5000 [--kind wav]``.
"""

from __future__ import annotations

import os

import pytest

from tests.fuzz.runner import format_bad, format_summary, run_kind
from tests.fuzz.seeds import build_seeds, seed_files
from tests.fuzz.targets import KINDS, TARGETS

CI_CASES = {"artifact-so": 40, "checkpoint": 100}
"""The kinds whose cases cost ~0.5 s each (a mutated 25 MB model.so or checkpoint written and loaded)."""


def _cases(kind: str) -> int:
    env = os.environ.get("EDGEAVS_FUZZ_CASES")
    return int(env) if env else CI_CASES.get(kind, 200)


SEED = int(os.environ.get("EDGEAVS_FUZZ_SEED", "0"))


@pytest.fixture(scope="session")
def fuzz_dirs(tmp_path_factory):
    from tests.compiler.artifacts import tiny_artifact

    root = tmp_path_factory.mktemp("fuzz")
    seeds = build_seeds(root / "seeds", artifact=tiny_artifact())
    return root, seeds


def test_every_seed_is_accepted(fuzz_dirs):
    """The seeds are valid inputs: a fuzz case that fails was made so by its mutation."""
    _, seeds = fuzz_dirs
    for kind, target in TARGETS.items():
        for path in seed_files(seeds, target.seed_kind):
            target.run(path)


@pytest.mark.parametrize("kind", KINDS)
def test_fuzz(kind, fuzz_dirs):
    root, seeds = fuzz_dirs
    cases = _cases(kind)
    summary = run_kind(kind, SEED, cases, seeds, root / "runs", crashers=root / "bad-inputs", jobs=2)
    line = format_summary([summary]).splitlines()[1]
    with open(root / "summary.txt", "a") as f:
        f.write(line + "\n")
    print(f"\n{format_summary([summary])}\n(all kinds so far: {root / 'summary.txt'})")
    assert summary["run"] == cases, f"{kind}: only {summary['run']} of {cases} cases ran"
    assert summary["bad"] == 0, (
        f"{kind}: {summary['bad']} of {cases} fuzz cases (seed {SEED}) ended other than accepted or a one-line "
        f"EdgeAVSError; inputs kept under {root / 'bad-inputs'}\n{format_bad(summary, seeds)}")
