"""The layering contract (docs/architecture.md): each package imports only packages below it, and no
module imports itself round a cycle. Every import counts, function-level and TYPE_CHECKING ones too."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SDM = Path(__file__).resolve().parent.parent / "sdm"

# lowest first; a package may import itself and anything earlier in this list
LAYERS = ["core", "hardware", "traces", "cache", "cachesim", "placement", "tiers", "runtime",
          "prefetch", "accel", "distributed", "cli"]
MAX_MODULE_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SDM.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SDM.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The sdm modules that `name` imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from pkg import submodule` imports the submodule
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        else:
            continue
        out.update(t for t in targets if t == "sdm" or t.startswith("sdm."))
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, set(mods)) - {name} for name, path in mods.items()}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_package_has_a_layer():
    packages = {p.name for p in SDM.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(LAYERS), f"packages without a layer: {sorted(packages - set(LAYERS))}"
    loose = sorted(p.name for p in SDM.glob("*.py") if p.name != "__init__.py")
    assert not loose, f"modules at the package root (give them a layer): {loose}"


def test_packages_import_only_downwards():
    bad = []
    for src, targets in _graph().items():
        ls = _layer(src)
        if ls is None:
            continue  # sdm/__init__.py: the public facade, lazy
        for dst in targets:
            ld = _layer(dst)
            if ld is None:
                bad.append(f"{src} -> {dst} (the facade)")
            elif LAYERS.index(ld) > LAYERS.index(ls):
                bad.append(f"{src} -> {dst} ({ls} may not import {ld})")
    assert not bad, "layering violations:\n" + "\n".join(sorted(bad))


def test_no_import_cycles():
    graph = _graph()
    # a package's __init__ re-exporting its own modules is not a cycle with them; edges into a
    # package from its own modules are (they would run the __init__ half-imported)
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("module", sorted(_modules()))
def test_module_size(module):
    lines = len(_modules()[module].read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module}: {lines} lines (split it: one job per module)"
