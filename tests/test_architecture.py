"""The shape of the code: layers import one way, no module imports another that imports it back
(function-level imports included), and ``import evonas`` gives the public API without torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("evonas", "genome", "training", "evolution")


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> nx.DiGraph:
    """Every module of the four packages and what it imports of them, anywhere in its body."""
    modules = {_module(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    graph.add_edge(name, target)  # a package importing its own parts is fine
    return graph


def test_no_module_imports_one_that_imports_it_back():
    cycles = list(nx.simple_cycles(import_graph()))
    assert not cycles, f"import cycles: {cycles[:5]}"


def test_layers_import_one_way():
    graph = import_graph()
    for module, imported in graph.edges:
        top, other = module.split(".")[0], imported.split(".")[0]
        if top == "genome":
            assert other == "genome", f"{module} imports {imported}: genome imports only genome"
        if top == "training":
            assert other in ("training", "genome"), f"{module} imports {imported}"
        if top in ("genome", "training", "evolution"):
            assert other != "evonas", f"{module} imports the facade {imported}"


def test_the_worker_imports_nothing_from_the_pool():
    graph = import_graph()
    reachable = nx.descendants(graph, "evolution.worker")
    assert not [m for m in reachable if m.startswith("evolution.pool")]


def test_import_evonas_gives_the_public_api_without_torch():
    code = ("import sys, evonas; "
            "names = ['run', 'resume', 'load_config', 'load_model', 'build_model', "
            "'BinaryGenome', 'CellGenome', 'ChoiceGenome', 'RunRecord', '__version__']; "
            "missing = [n for n in names if not hasattr(evonas, n)]; "
            "print(evonas.__version__, missing, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout.split()
    assert out[1:] == ["[]", "False"], out
    version = subprocess.run([sys.executable, "-m", "evonas", "--version"], capture_output=True,
                             text=True, cwd=REPO, check=True).stdout
    assert version.strip() == f"evonas {out[0]}"
