"""ExecuTorch export of a saved ``torch.export`` program to an XNNPACK ``.pte``.

Run by the Python of an environment with ``executorch`` (not necessarily edgeavs')::

    python export_pte.py PROGRAM.pt2 OUT.pte REPORT.json

Two rewrites before lowering, both exact for the fixed input shapes of the export:

- ``aten.adaptive_max_pool2d(x, [1, 1])`` (not a core ATen op: ExecuTorch would decompose it into
  ops XNNPACK does not take) becomes ``aten.amax(x, [2, 3], keepdim=True)``;
- ExecuTorch's ``constant_prop_pass`` folds what depends only on weights (the positional
  embeddings' linear interpolation to the feature map's length), which would otherwise stay
  outside XNNPACK as portable ops.

Then ``to_edge_transform_and_lower(partitioner=[XnnpackPartitioner()])`` and ``to_executorch``.
The report counts the delegated and the remaining (non-delegated) operator calls.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import time


def rewrite_adaptive_max_pool(ep) -> int:
    import torch

    aten = torch.ops.aten
    graph = ep.graph_module.graph
    n = 0
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target != aten.adaptive_max_pool2d.default:
            continue
        size = list(node.args[1])
        if size != [1, 1]:
            raise SystemExit(f"export_pte: adaptive_max_pool2d to {size} is not supported")
        with graph.inserting_before(node):
            amax = graph.call_function(aten.amax.default, (node.args[0], [2, 3], True))
        amax.meta = dict(node.meta)
        if "val" in node.meta:
            amax.meta["val"] = node.meta["val"][0]
        for user in list(node.users):
            if user.op == "call_function" and user.args[1] == 0:
                user.replace_all_uses_with(amax)
            graph.erase_node(user)
        graph.erase_node(node)
        n += 1
    graph.eliminate_dead_code()
    ep.graph_module.recompile()
    return n


def lower_to_pte(ep, out_pte: str, t0: float | None = None) -> dict:
    """The two rewrites, XNNPACK lowering and ``to_executorch`` of the exported program ``ep``
    (fp32, or a pt2e-quantized model exported again); writes ``out_pte`` atomically and returns
    the report (delegated / non-delegated operator calls, versions, seconds)."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.exir.passes.constant_prop_pass import constant_prop_pass

    t0 = time.perf_counter() if t0 is None else t0
    pools = rewrite_adaptive_max_pool(ep)
    ep = ep.run_decompositions({})
    ep = constant_prop_pass(ep)
    edge = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])
    ops = collections.Counter()
    delegates = 0
    for node in edge.exported_program().graph.nodes:
        if node.op != "call_function":
            continue
        name = str(node.target)
        if "executorch_call_delegate" in name:
            delegates += 1
        elif "getitem" not in name:
            ops[name] += 1
    prog = edge.to_executorch()
    tmp = f"{out_pte}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        prog.write_to_file(fh)
    os.replace(tmp, out_pte)
    import executorch

    return {"adaptive_max_pool2d_rewritten": pools, "delegate_calls": delegates,
            "non_delegated_ops": sum(ops.values()), "non_delegated": dict(ops.most_common()),
            "executorch": getattr(executorch, "__version__", None), "torch": torch.__version__,
            "seconds": round(time.perf_counter() - t0, 1)}


def main(argv) -> int:
    if len(argv) != 4:
        sys.stderr.write("usage: export_pte.py PROGRAM.pt2 OUT.pte REPORT.json\n")
        return 2
    import torch

    t0 = time.perf_counter()
    report = lower_to_pte(torch.export.load(argv[1]), argv[2], t0)
    with open(argv[3], "w") as fh:
        json.dump(report, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
