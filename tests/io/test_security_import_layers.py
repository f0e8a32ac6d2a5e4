"""The package's modules import each other without cycles, counting imports inside functions too."""

import ast
from pathlib import Path

import sb3_sacae

PACKAGE_ROOT = Path(sb3_sacae.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Package modules that ``path`` imports anywhere in its body (module level, functions, classes)."""
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from sb3_sacae.io import files" imports the submodule; "from sb3_sacae.io import X" the package
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(path): path for path in PACKAGE_ROOT.rglob("*.py")}
    modules = set(files)
    graph = {}
    for name, path in files.items():
        # importing a.b.c imports a and a.b first: a module does not depend on its own parents through that
        graph[name] = {other for other in _imports(path, modules) if other != name and not name.startswith(other + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_the_import_graph_sees_function_level_imports():
    graph = _graph()
    assert "sb3_sacae.checkpoints" in graph["sb3_sacae.serialization"]  # imported inside load_checkpoint


def _cycles_within(prefix: str, exclude: str | None = None) -> list[list[str]]:
    graph = {
        name: {other for other in imported if exclude is None or not other.startswith(exclude)}
        for name, imported in _graph().items()
        if name.startswith(prefix) and (exclude is None or not name.startswith(exclude))
    }
    return _cycles(graph)


def test_the_package_outside_zoo_has_no_import_cycles():
    cycles = _cycles_within("sb3_sacae", exclude="sb3_sacae.zoo")
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_the_zoo_subpackage_has_no_import_cycles():
    cycles = _cycles_within("sb3_sacae")
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_the_io_layer_imports_nothing_above_it():
    graph = _graph()
    for name, imported in graph.items():
        if name.startswith("sb3_sacae.io"):
            assert all(other.startswith("sb3_sacae.io") for other in imported), (name, imported)
