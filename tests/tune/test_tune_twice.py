"""tune's MetaSchedule part runs any number of times in one process, whatever logging the process has.

TVM's ``extracted_tasks_to_tune_contexts`` (which tune used) configured the process's logging on each call
(``ms.logging.create_loggers`` -> ``logging.config.dictConfig``): with a handler without a name on the
``tvm.s_tir.meta_schedule`` logger it failed with ``AttributeError: 'NoneType' object has no attribute
'format'``, it closed every other handler in the process, and it printed to stdout. tune now builds its tuning
contexts itself (``edgeavs.tune.tuner.tune_contexts``); these tests run that and a MetaSchedule round twice on a
small module (two trials each) with such handlers present.
"""

from __future__ import annotations

import logging

import pytest

from edgeavs.targets import load_target
from edgeavs.tune.remote import build_candidate
from edgeavs.tune.tuner import BUILDER_TIMEOUT_S, metaschedule_round, tune_contexts
from edgeavs.tvm_api import meta_schedule as ms
from edgeavs.tvm_api import relax

pytestmark = pytest.mark.slow  # two MetaSchedule rounds (each starts builder and runner processes)

MS_LOGGER = "tvm.s_tir.meta_schedule"


def _module():
    """relu(x @ w) + 1, legalized: two small TIR functions (a matmul and a fused elementwise)."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((16, 32), "float32"))
    w = relax.Var("w", relax.TensorType((32, 16), "float32"))
    with bb.function("main", [x, w]):
        with bb.dataflow():
            y = bb.emit(relax.op.matmul(x, w))
            z = bb.emit(relax.op.add(relax.op.nn.relu(y), relax.const(1.0, "float32")))
            out = bb.emit_output(z)
        bb.emit_func_output(out)
    return relax.transform.LegalizeOps()(bb.get())


@pytest.fixture
def foreign_handlers(tmp_path):
    """What a process may already have: an unnamed and a named handler on MetaSchedule's logger, and the
    application's own file handler on the root logger."""
    ms_logger, root = logging.getLogger(MS_LOGGER), logging.getLogger()
    unnamed = logging.StreamHandler()
    named = logging.FileHandler(tmp_path / "named.log")
    named.set_name("someone-else")
    app = logging.FileHandler(tmp_path / "app.log")
    before = list(ms_logger.handlers)
    for h in (unnamed, named):
        ms_logger.addHandler(h)
    root.addHandler(app)
    try:
        yield ms_logger, [*before, unnamed, named], app
    finally:
        for h in (unnamed, named):
            ms_logger.removeHandler(h)
            h.close()
        root.removeHandler(app)
        app.close()


def _one_round(work_dir, target) -> int:
    """What tune does for one task: contexts, one round of two trials into a fresh database; its record count."""
    extracted = ms.relax_integration.extract_tasks(_module(), target)
    contexts = tune_contexts(extracted, seed=0, num_threads=1)
    context = min(contexts, key=lambda c: c.task_name)
    db = ms.database.JSONDatabase(work_dir=str(work_dir))
    builder = ms.builder.LocalBuilder(max_workers=1, timeout_sec=BUILDER_TIMEOUT_S, f_build=build_candidate)
    metaschedule_round(context, 0, 2, work_dir=work_dir, builder=builder, runner=ms.runner.LocalRunner(),
                       database=db)
    return len(db.get_all_tuning_records())


def test_metaschedule_part_of_tune_runs_twice_in_one_process(tmp_path, foreign_handlers, capfd):
    ms_logger, handlers, app = foreign_handlers
    target = load_target("host").to_tvm()
    for run in ("first", "second"):
        work_dir = tmp_path / run
        work_dir.mkdir()
        assert _one_round(work_dir, target) >= 1, run
    assert ms_logger.handlers == handlers  # nothing added, nothing taken away
    assert app.stream is not None and not app.stream.closed  # the application's handler was not closed
    assert capfd.readouterr().out == ""  # nothing on stdout (tune --json prints only its summary there)
