"""The import arrows run one way: the shared layer (vzdivert's contract modules) <- the
process packages <- the command line, with no cycle between packages. Read from the
source (ast), so a lazy import inside a function counts too; type-only imports do not."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FOLDERS = {"vzdivert": "vzdivert", "supervisor": "vzdivert.supervisor",
           "rtworker": "vzdivert.rtworker", "ingest": "vzdivert.ingest",
           "webui": "vzdivert.webui"}
PROCESS_PACKAGES = ("vzdivert.supervisor", "vzdivert.rtworker", "vzdivert.ingest",
                    "vzdivert.webui", "vzdivert.mqtt", "vzdivert.demo_meter")
CLI = ("vzdivert.cli", "vzdivert.calibrate", "vzdivert.__main__")
# process package -> another's module it may still use: the output drivers, until they
# move to a layer no process owns (issue 10, item 2)
PENDING = {("vzdivert.supervisor", "vzdivert.rtworker.drivers"),
           ("vzdivert.demo_meter", "vzdivert.rtworker.drivers")}


def modules() -> dict[str, Path]:
    out = {}
    for folder, package in FOLDERS.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([package, *parts])] = path
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(module: str, path: Path) -> set[str]:
    """The vzdivert modules ``module`` imports (absolute or relative, at any depth)."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return {name for name in found if name == "vzdivert" or name.startswith("vzdivert.")}


def unit(module: str) -> str:
    """The package a module belongs to for the layering: a process package, the CLI, or
    the shared layer."""
    for name in PROCESS_PACKAGES:
        if module == name or module.startswith(name + "."):
            return name
    return "cli" if module in CLI else "vzdivert"


def layer(module: str) -> int:
    name = unit(module)
    return 2 if name == "cli" else 1 if name in PROCESS_PACKAGES else 0


def graph() -> dict[str, set[tuple[str, str]]]:
    """unit -> {(module, imported module)} for every arrow that leaves the unit."""
    known = modules()
    out: dict[str, set[tuple[str, str]]] = {}
    for module, path in known.items():
        for target in imports(module, path):
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]  # `from pkg import name` of a non-module
            if target in known and unit(target) != unit(module):
                out.setdefault(unit(module), set()).add((module, target))
    return out


def test_the_scan_sees_the_tree() -> None:
    arrows = graph()
    assert ("vzdivert.supervisor.arbiter", "vzdivert.bus") in arrows["vzdivert.supervisor"]
    assert ("vzdivert.cli", "vzdivert.supervisor.service") in arrows["cli"]
    assert len(modules()) > 40


def test_arrows_point_down_only() -> None:
    wrong = []
    for source, arrows in graph().items():
        for module, target in arrows:
            down = layer(target) < layer(module)
            pending = any(source == s and (target == t or target.startswith(t + "."))
                          for s, t in PENDING)
            if not down and not pending:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def test_no_cycle_between_packages() -> None:
    edges: dict[str, set[str]] = {}
    for source, arrows in graph().items():
        edges.setdefault(source, set()).update(unit(t) for _, t in arrows)
    done: set[str] = set()

    def walk(node: str, path: list[str]) -> None:
        if node in path:
            raise AssertionError("import cycle: " + " -> ".join([*path, node]))
        if node in done:
            return
        for nxt in sorted(edges.get(node, ())):
            walk(nxt, [*path, node])
        done.add(node)

    for node in sorted(edges):
        walk(node, [])
