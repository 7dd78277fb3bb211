"""The layout is the pipeline: an AST walk of saferun/ that fails on a broken contract.

Contracts (docs/design.md, "Layers"):
- no import circle anywhere in the package (lazy imports inside functions count too);
- a package imports only packages of lower layers (and itself): the core (model, profiles,
  plan, policy, inputs, render, export, learn) never reaches engine/, app/ or cli/;
- only engine/ opens a subprocess, a socket, an HTTP connection or the Docker API, or
  replaces the process (os.exec*).

The checker is exercised on small broken trees below, so it is shown to fail.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "saferun"

# Lowest first. A module may import its own package and any package of a lower layer.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"", "errors", "data"}),  # "" is saferun/__init__.py (the version)
    frozenset({"model"}),
    frozenset({"profiles"}),
    frozenset({"plan"}),
    frozenset({"policy"}),
    frozenset({"inputs"}),
    frozenset({"render", "export", "learn"}),
    frozenset({"engine"}),
    frozenset({"app"}),
    frozenset({"cli"}),
    frozenset({"__main__"}),
)
EDGE = "engine"
# What only the edge may use: processes, sockets, HTTP and the Docker SDK.
EDGE_MODULES = frozenset({"subprocess", "socket", "http", "urllib.request", "docker",
                          "requests", "asyncio.subprocess", "pty", "multiprocessing"})
EDGE_OS_CALLS = ("exec", "spawn", "posix_spawn", "system", "popen", "fork")


@dataclass(frozen=True)
class Problem:
    rule: str
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.where}: {self.detail}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([root.name, *parts])


def package_of(module: str, top: str) -> str:
    """The stage a module belongs to: the first part after the top package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == top else ""


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """Every imported module name (absolute), with its line: top level, lazy and TYPE_CHECKING."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base, node.lineno
            for alias in node.names:  # `from saferun.engine import api` imports a module
                yield f"{base}.{alias.name}", node.lineno


def read_graph(root: Path) -> tuple[dict[str, set[str]], dict[str, list[Problem]]]:
    """module -> the modules of the same tree it imports; and edge-use problems per module."""
    top = root.name
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    edge_use: dict[str, list[Problem]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        where = str(path.relative_to(root.parent))
        for name, line in _imports(tree, module, path.name == "__init__.py"):
            if name in modules and name != module:
                graph[module].add(name)
            elif name.startswith(top + "."):
                parent = name.rsplit(".", 1)[0]
                if parent in modules and parent != module:
                    graph[module].add(parent)
            root_name = name.split(".")[0]
            if (name in EDGE_MODULES or root_name in EDGE_MODULES) and \
                    package_of(module, top) != EDGE:
                edge_use.setdefault(module, []).append(
                    Problem("edge-only", f"{where}:{line}", f"imports {name.split('.')[0]}"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "os" and node.attr.startswith(EDGE_OS_CALLS)
                    and package_of(module, top) != EDGE):
                edge_use.setdefault(module, []).append(
                    Problem("edge-only", f"{where}:{node.lineno}", f"calls os.{node.attr}"))
    return graph, edge_use


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def layer_of(package: str, layers: tuple[frozenset[str], ...]) -> int:
    for number, members in enumerate(layers):
        if package in members:
            return number
    raise KeyError(package)


def check_tree(root: Path, layers: tuple[frozenset[str], ...] = LAYERS) -> list[Problem]:
    graph, edge_use = read_graph(root)
    top = root.name
    problems = [Problem("circle", " -> ".join(c), "these modules import each other")
                for c in circles(graph)]
    for module in sorted(graph):
        package = package_of(module, top)
        try:
            mine = layer_of(package, layers)
        except KeyError:
            problems.append(Problem("layer", module, f"package '{package}' has no layer"))
            continue
        reported: set[str] = set()
        for target in sorted(graph[module]):
            other = package_of(target, top)
            if other == package or other in reported:
                continue
            theirs = layer_of(other, layers) if any(other in m for m in layers) else None
            if theirs is None or theirs >= mine:
                reported.add(other)
                problems.append(Problem("layer", module,
                                        f"imports {target} (layer '{other}' is not below "
                                        f"'{package}')"))
        problems += list(dict.fromkeys(edge_use.get(module, [])))  # one per line and name
    return problems


def test_the_package_keeps_every_contract() -> None:
    problems = check_tree(PACKAGE_DIR)
    assert not problems, "\n".join(map(str, problems))


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in PACKAGE_DIR.iterdir()
                if p.is_dir() and (p / "__init__.py").exists()}
    packages |= {p.stem for p in PACKAGE_DIR.glob("*.py") if p.stem != "__init__"}
    assert packages <= set().union(*LAYERS), packages - set().union(*LAYERS)


# --- the checker fails on broken trees --------------------------------------------------------

def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


SMALL_LAYERS = (frozenset({""}), frozenset({"model"}), frozenset({"engine"}),
                frozenset({"cli"}))


def _rules(problems: list[Problem]) -> list[str]:
    return sorted(p.rule for p in problems)


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "model/__init__.py": "", "model/a.py": "X = 1\n",
        "engine/__init__.py": "", "engine/b.py": "import subprocess\nfrom pkg.model.a import X\n",
        "cli/__init__.py": "", "cli/c.py": "from pkg.engine import b\n",
    })
    assert check_tree(root, SMALL_LAYERS) == []


def test_a_circle_fails_even_through_a_lazy_import(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "model/__init__.py": "",
        "model/a.py": "from pkg.model.b import Y\nX = 1\n",
        "model/b.py": "Y = 2\ndef f():\n    from pkg.model.a import X\n    return X\n",
    })
    problems = check_tree(root, SMALL_LAYERS)
    assert _rules(problems) == ["circle"] and "pkg.model.a -> pkg.model.b" in problems[0].where


def test_a_core_package_importing_the_edge_or_the_cli_fails(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "model/__init__.py": "",
        "model/a.py": "from pkg.engine.b import go\nfrom pkg.cli import c\n",
        "engine/__init__.py": "", "engine/b.py": "def go(): pass\n",
        "cli/__init__.py": "", "cli/c.py": "",
    })
    problems = check_tree(root, SMALL_LAYERS)
    assert _rules(problems) == ["layer", "layer"]
    assert {p.detail.split()[1].split(".")[1] for p in problems} == {"engine", "cli"}


def test_a_relative_import_upwards_fails(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "model/__init__.py": "", "model/a.py": "from ..engine import b\n",
        "engine/__init__.py": "", "engine/b.py": "",
    })
    assert _rules(check_tree(root, SMALL_LAYERS)) == ["layer"]


@pytest.mark.parametrize("code", [
    "import subprocess\n",
    "import socket\n",
    "from http import client\n",
    "import docker\n",
    "import os\nos.execv('/bin/true', ['true'])\n",
    "import os\nos.system('true')\n",
    "def f():\n    import subprocess\n    return subprocess.run\n",
])
def test_a_subprocess_socket_or_docker_api_outside_the_edge_fails(
        tmp_path: Path, code: str) -> None:
    root = _tree(tmp_path, {"cli/__init__.py": "", "cli/c.py": code})
    assert _rules(check_tree(root, SMALL_LAYERS)) == ["edge-only"]
    inside = _tree(tmp_path / "ok", {"engine/__init__.py": "", "engine/e.py": code})
    assert check_tree(inside, SMALL_LAYERS) == []


def test_unit_tests_mirror_the_package() -> None:
    unit = Path(__file__).resolve().parent / "unit"
    folders = {p.name for p in unit.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    packages = {p.name for p in PACKAGE_DIR.iterdir() if (p / "__init__.py").exists()}
    assert folders <= packages, f"test folders without a package: {folders - packages}"
    loose = sorted(p.name for p in unit.glob("test_*.py"))
    assert not loose, f"unit tests outside a package folder: {loose}"
