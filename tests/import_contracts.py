"""The `acyclic_modules` contract type of `make lint` (import-linter; registered and used in
pyproject.toml): no import cycle between the modules (files) of the named packages, imports
inside functions included.

import-linter's own `acyclic_siblings` compares the children of a package with each
sub-package squashed into one node, so two sub-packages that import each other, one module
each way, break it even when no file imports itself back. billing's sub-packages are meant to
(`billing.models` imports the sub-packages' models to register them; their services import
`billing.models`), so billing as a whole cannot use it. This contract follows the imports file
by file: only modules that import each other in a loop break it.
"""

from __future__ import annotations

import grimp
from importlinter import Contract, ContractCheck, fields, output


class AcyclicModulesContract(Contract):
    type_name = "acyclic_modules"

    packages = fields.ListField(subfield=fields.ModuleField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        modules: set[str] = set()
        for package in self.packages:
            modules |= {package.name, *graph.find_descendants(package.name)}
        imports = {
            module: graph.find_modules_directly_imported_by(module) & modules for module in modules
        }
        loops = [
            [(a, b) for a in sorted(group) for b in sorted(imports[a] & group)]
            for group in _strongly_connected(imports)
            if len(group) > 1
        ]
        return ContractCheck(kept=not loops, warnings=[], metadata={"loops": sorted(loops)})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for loop in check.metadata["loops"]:
            output.print_error("These modules import each other in a loop:")
            for importer, imported in loop:
                output.print_error(f"- {importer} -> {imported}")
            output.new_line()


def _strongly_connected(imports: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected groups of the import graph (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for root in sorted(imports):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(sorted(imports[root])))]
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    groups.append(group)
            elif target not in index:
                index[target] = low[target] = len(index)
                stack.append(target)
                on_stack.add(target)
                work.append((target, iter(sorted(imports[target]))))
            elif target in on_stack:
                low[node] = min(low[node], index[target])
    return groups
