"""The package structure, read from the imports of srs/: which package may use which.

Every import counts, a function's own included. A package is a folder of srs/ (or a
module at its top, such as ``srs.live``). Its ``_private`` names are its own.
"""

import ast
from pathlib import Path

SRS = Path(__file__).resolve().parent.parent / "srs"

# The floor packages, each standing on those before it (never on one after it): a check
# that must open a console, or a close that must draft an incident, sends a signal
# (srs/signals.py) that the package above receives.
FLOOR_ORDER = ("booths", "overdose", "referrals", "incidents")
# What the floor packages stand on, and what stands on them.
SHARED = {"alerts", "auth", "sites", "clients", "naloxone"}
OVER_THE_SHARED = {"booths", "overdose", "incidents", "referrals", "dashboard", "api", "jobs",
                   "cli"}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _imports():
    """(importing module, imported module, imported names) for every import of srs."""
    for path in sorted(SRS.rglob("*.py")):
        module = ".".join(path.relative_to(SRS.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module \
                    and node.module.split(".")[0] == "srs":
                names = [alias.name for alias in node.names]
                if node.module == "srs":  # from srs import live, api
                    for name in names:
                        yield module, f"srs.{name}", []
                else:
                    yield module, node.module, names
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("srs."):
                        yield module, alias.name, []


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for importer, imported, _names in _imports():
        a, b = _package(importer), _package(imported)
        if a != b and a != "srs" and b != "srs":
            graph.setdefault(a, set()).add(b)
    return graph


def _in_circles(graph: dict[str, set[str]]) -> set[str]:
    """Every package from which its own imports lead back to it."""
    def reaches(start: str) -> set[str]:
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, ()))
        return seen

    return {package for package in graph if package in reaches(package)}


def test_no_package_imports_another_packages_private_names():
    crossings = [f"{importer} imports {name} from {imported}"
                 for importer, imported, names in _imports() for name in names
                 if name.startswith("_") and _package(importer) != _package(imported)]
    assert crossings == []


def test_no_package_is_in_an_import_circle():
    assert sorted(_in_circles(_graph())) == []


def test_no_module_is_in_an_import_circle():
    """Inside a package too: a scheduled job's module never needs the views, for one."""
    modules = {importer for importer, _imported, _names in _imports()}
    graph: dict[str, set[str]] = {}
    for importer, imported, _names in _imports():
        if imported in modules and imported != importer:
            graph.setdefault(importer, set()).add(imported)
    assert sorted(_in_circles(graph)) == []


def test_each_floor_package_imports_only_the_floor_packages_below_it():
    graph = _graph()
    upward = sorted(f"{a} -> {b}" for i, a in enumerate(FLOOR_ORDER)
                    for b in graph.get(a, ()) if b in FLOOR_ORDER[i:])
    assert upward == []


def test_live_and_the_shared_plumbing_import_no_domain_package():
    """The shared modules sit below every domain package."""
    below = {"live", "unit", "templating", "forms", "extensions", "common", "errors",
             "signals"}
    domain = SHARED | OVER_THE_SHARED
    graph = _graph()
    upward = sorted(f"{a} -> {b}" for a in below for b in graph.get(a, ()) if b in domain)
    assert upward == []


def test_alerts_auth_and_sites_import_no_floor_package():
    """The floor packages raise alerts and check roles; never the other way."""
    graph = _graph()
    upward = sorted(f"{a} -> {b}" for a in SHARED for b in graph.get(a, ())
                    if b in OVER_THE_SHARED)
    assert upward == []

