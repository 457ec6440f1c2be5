"""The package's layers, read from its source: imports go down the layers, never up or across,
and no module imports, at its top, a module that imports it back.

A request flows settings -> server -> wire -> stack -> app (shared/DESIGN.md, docs/architecture);
each subpackage may use the layers below it and its own modules, nothing else. Breaking a rule
names the importing module, the line and the imported one.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "src" / "hello"  # the source, as committed
# Top to bottom. A name is a subpackage of hello, or a module directly under it.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(names.split())
    for names in (
        "__main__",  # python -m hello
        "cli asgi",  # the command line; the ASGI app for `hypercorn hello.asgi:app`
        "server pack",  # processes, sockets, signals; the one-file build
        "wire",  # the protocols
        "stack",  # the ASGI layers around the user's app
        "site",  # the bundled site
        "files tls ops",  # static files; certificates; metrics, tasks, health
        "config",  # settings
        "__init__ errors asgi_types heads responses",  # what every layer may use
    )
)
BASE = LAYERS[-1]


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("hello", *path.relative_to(PACKAGE).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


MODULES = _modules()


def _unit(module: str) -> str:
    """The layer unit a dotted module name belongs to: its subpackage, or its own name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _rank(unit: str) -> int:
    for rank, names in enumerate(LAYERS):
        if unit in names:
            return rank
    raise AssertionError(f"hello.{unit} is in no layer of tests/test_layers.py: place it")


def _imports(path: Path, top_only: bool) -> list[tuple[int, str]]:
    """(line, hello module) for each import in ``path``; ``top_only``: only those run when the
    module is imported (not inside functions, nor under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_only else ast.walk(tree)
    found = []
    for node in nodes:
        names: list[str] = []
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from hello.x import y`` imports hello.x.y when y is a module of its own.
            names = [
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in MODULES
                else node.module
                for alias in node.names
            ]
        found += [(node.lineno, name) for name in names if name.split(".")[0] == "hello"]
    return found


def test_every_unit_has_a_layer() -> None:
    units = {_unit(module) for module in MODULES}
    placed = set().union(*LAYERS)
    assert units <= placed, f"not placed in LAYERS: {sorted(units - placed)}"


def test_imports_go_down_the_layers() -> None:
    wrong = []
    for module, path in sorted(MODULES.items()):
        unit = _unit(module)
        for line, imported in _imports(path, top_only=False):
            other = _unit(imported)
            if other == unit or (other in BASE and unit in BASE):
                continue
            if _rank(other) <= _rank(unit):
                where = "across" if _rank(other) == _rank(unit) else "up"
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports {imported} ({where})")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_import_cycle() -> None:
    graph = {
        module: sorted({name for _, name in _imports(path, top_only=True)} & MODULES.keys())
        for module, path in MODULES.items()
    }
    cycles = []
    state: dict[str, int] = {}  # 1 on the path being walked, 2 done

    def walk(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in graph[module]:
            if state.get(imported) == 1:
                cycles.append(" -> ".join([*path[path.index(imported) :], imported]))
            elif imported not in state:
                walk(imported, [*path, imported])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
