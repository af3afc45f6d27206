"""No import cycle in mlcompile, counting the imports inside functions: a cycle hidden by a
function-level import still ties two modules together (neither can be understood, moved or
tested without the other) and breaks as soon as someone hoists the import."""

from __future__ import annotations

from import_graph import cycles, graph, imports_of


def test_the_import_graph_of_mlcompile_has_no_cycle() -> None:
    edges = graph(type_checking=False)
    found = cycles(edges)
    report = []
    for component in found:
        members = set(component)
        report.append(" <-> ".join(component))
        for module in component:
            for target, line in sorted(imports_of(module, type_checking=False).items()):
                if target in members:
                    report.append(f"    {module}:{line} imports {target}")
    assert not found, "import cycles (move the shared piece into a module of its own):\n" + "\n".join(report)


def test_the_graph_sees_imports_inside_functions() -> None:
    # mlcompile.runtime.__main__ imports vertex_trial inside main(), only for a Vertex AI trial
    assert "mlcompile.runtime.vertex_trial" in imports_of("mlcompile.runtime.__main__")
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
