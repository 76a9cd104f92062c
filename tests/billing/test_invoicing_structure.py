"""The shape of `billing.invoicing`, read from the source with `ast`: one engine finalizes
and numbers, and no module reaches into another's `_private` names. That its modules import
each other one way (no cycles, imports inside functions included) is an import-linter
contract (`acyclic`, pyproject.toml, `make lint`), like the layers of the whole house."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "billing" / "invoicing"
PREFIX = "billing.invoicing."


def _modules() -> dict[str, ast.Module]:
    return {
        path.stem: ast.parse(path.read_text(), filename=str(path))
        for path in sorted(PACKAGE.glob("*.py"))
        if path.stem != "__init__"
    }


def _imports(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """(sibling module, names imported from it) for every import anywhere in the module,
    including those deferred inside functions."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(PREFIX):
                found.append((node.module[len(PREFIX) :], [a.name for a in node.names]))
            elif node.module == "billing.invoicing":
                found += [(a.name, []) for a in node.names if (PACKAGE / f"{a.name}.py").exists()]
        elif isinstance(node, ast.Import):
            found += [(a.name[len(PREFIX) :], []) for a in node.names if a.name.startswith(PREFIX)]
    return found


def _graph() -> dict[str, set[str]]:
    return {name: {mod for mod, _ in _imports(tree)} for name, tree in _modules().items()}


def test_the_finalization_paths_share_the_engine():
    graph = _graph()
    assert {"engine"} <= graph["finalizing"]
    assert {"engine", "finalizing"} <= graph["issuing"]
    assert {"engine", "finalizing"} <= graph["cycle"]
    assert not ({"cycle", "issuing", "finalizing"} & graph["engine"])
    # One numbering path: only the engine takes numbers from the sequence.
    takers = sorted(
        name
        for name, tree in _modules().items()
        for mod, names in _imports(tree)
        if mod == "numbering" and "invoice_numbers_next" in names
    )
    assert takers == ["engine"]


def test_no_module_uses_another_modules_private_names():
    offences = []
    for name, tree in _modules().items():
        for mod, names in _imports(tree):
            offences += [f"{name} imports {mod}.{n}" for n in names if n.startswith("_")]
        aliases = {
            alias.asname or alias.name.rsplit(".", 1)[-1]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom | ast.Import)
            for alias in node.names
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                offences.append(f"{name} uses {node.value.id}.{node.attr}")
    # Django's model options are the one private attribute everyone uses.
    assert [o for o in offences if not o.endswith("._meta")] == []


def test_every_invoicing_batch_returns_the_one_result_type():
    import inspect

    from billing.invoicing import cycle, finalizing, generate, issuing
    from billing.invoicing.cycle import invoices_generate_for_period
    from billing.invoicing.finalizing import invoices_finalize, invoices_finalize_due
    from billing.invoicing.issuing import invoices_issue_for_period

    batches = [
        invoices_generate_for_period,
        invoices_issue_for_period,
        invoices_finalize,
        invoices_finalize_due,
        generate.invoices_generate,
    ]
    assert {inspect.signature(f).return_annotation for f in batches} == {"BatchResult"}
    # The hourly cycle is its two batches (drafting, finalizing) and the repairs after them.
    parts = {n: f.type for n, f in cycle.CycleResult.__dataclass_fields__.items()}
    assert (parts["generated"], parts["finalized"]) == ("BatchResult", "BatchResult")
    # No other result dataclass left in the batch modules.
    results = {
        name
        for module in (cycle, finalizing, generate, issuing)
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and name.endswith("Result") and obj.__module__ == module.__name__
    }
    assert results == {"CycleResult"}
