"""List the import circles among the modules of ``edgeavs`` and ``kernels``.

``python -m tests.import_cycles`` (from the repository root) prints each circle, a set of
modules that import each other directly or through one another (a strongly connected
component of the import graph, with at least two members or a module importing itself), and
exits 1 if there is one, 0 if there is none. Every import statement counts, those inside
functions too (the graph is grimp's, as import-linter reads it). ``cli.py`` is no package and
so no root here; it imports the commands only through ``importlib`` by name.
"""

from __future__ import annotations

import sys

ROOTS = ("edgeavs", "kernels")


def import_cycles(roots=ROOTS) -> list[list[str]]:
    """The circles among ``roots``' modules: sorted lists of module names, largest first."""
    import grimp

    graph = grimp.build_graph(*roots)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    # Tarjan's strongly connected components, iterative (no recursion limit to meet).
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            succ = edges.get(node, [])
            if i < len(succ):
                work.append((node, i + 1))
                nxt = succ[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1 or node in edges.get(node, []):
                    out.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return sorted(out, key=lambda c: (-len(c), c))


def main() -> int:
    cycles = import_cycles()
    for comp in cycles:
        print(f"circle of {len(comp)}: {' '.join(comp)}")
    print(f"{len(cycles)} import circle(s) among {', '.join(ROOTS)}")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
