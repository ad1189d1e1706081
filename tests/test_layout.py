"""The package's layout shows its layers (issue 23): no module imports a module that imports it
back, and each package imports only the packages below it, as its ``__init__`` docstring says."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "nasbeff"

# what each top-level package (or module) of nasbeff may import, besides itself and nasbeff/__init__
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "data": {"store"},
    "store": set(),
    "executors": set(),
    "evaluation": {"predictors"},
    "predictors": {"spaces"},
    "tables": {"data"},
    "spaces": set(),
    "proxies": {"core", "spaces"},
    "training": {"core", "data", "spaces", "store", "predictors"},
    "selection": {"core", "data", "training", "predictors", "evaluation"},
    "optimizers": {"tables", "spaces", "proxies", "predictors"},
    "runs": {"core", "data", "tables", "spaces", "store", "executors", "evaluation", "predictors", "proxies",
             "training", "selection", "optimizers"},
    "cli": {"runs", "proxies", "selection", "data", "spaces", "training", "store", "tables"},
    "__main__": {"cli"},
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every nasbeff module ``path`` imports (at module level or inside functions)."""
    mod = _module(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):  # imports under TYPE_CHECKING count too: a circle for readers and checkers
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("nasbeff")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("nasbeff"):
                continue
            for a in node.names:  # "from . import x": x may be a submodule
                sub = f"{target}.{a.name}"
                out.add(sub if (PKG.parent / sub.replace(".", "/")).with_suffix(".py").exists()
                        or (PKG.parent / sub.replace(".", "/")).is_dir() else target)
    out.discard(mod)
    return out


def _graph() -> dict[str, set[str]]:
    return {_module(p): _imports(p) for p in PKG.rglob("*.py")}


def test_no_module_imports_a_module_that_imports_it_back():
    graph = _graph()
    pairs = sorted({tuple(sorted((a, b))) for a, deps in graph.items() for b in deps if a in graph.get(b, ())})
    assert not pairs, f"modules importing each other: {pairs}"


def test_no_import_circle_between_packages():
    graph = _graph()
    top = lambda m: m.split(".")[1] if m.count(".") else ""  # noqa: E731
    packages: dict[str, set[str]] = {}
    for a, deps in graph.items():
        packages.setdefault(top(a), set()).update(top(b) for b in deps if top(b) not in ("", top(a)))
    bad = {p: sorted(d - ALLOWED.get(p, set())) for p, d in packages.items() if p and d - ALLOWED.get(p, set())}
    assert not bad, f"packages importing what their layer may not: {bad}"
    # and the allowed graph itself has no circle (a topological order exists)
    left, order = dict(ALLOWED), []
    while left:
        ready = [p for p, d in left.items() if not (d & set(left))]
        assert ready, f"circle among {sorted(left)}"
        order += ready
        for p in ready:
            del left[p]


def test_every_package_says_what_it_holds_and_what_it_may_import():
    for init in PKG.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(doc) > 80, f"{init.parent.name}/__init__.py has no docstring worth the name"
        assert "import" in doc.lower(), f"{init.parent.name}/__init__.py does not say what it may import"


def test_no_two_modules_share_a_confusing_name():
    """A newcomer should not have to guess: no flat module beside a package of the same stem, no
    module named like a top-level folder of the repository."""
    names = {p.stem for p in PKG.glob("*.py")} - {"__init__", "__main__"}
    assert not names, f"flat modules left in nasbeff/: {sorted(names)} (each belongs in a package)"
    assert not (PKG / "benchmarks").exists() and not (PKG / "benchmarks.py").exists()
