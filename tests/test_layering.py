"""The layers stay apart: the rules (app/consultations) never read the web request or the running
app, and never import a blueprint or the CLI; the CLI never imports a blueprint; nothing imports in a circle.

Read from the source with `ast`, so an import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"
BLUEPRINTS = ("app.intake", "app.queue", "app.staff", "app.auth", "app.conditions", "app.payments")


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(APP.rglob("*.py"))}


def within(name: str, packages: tuple[str, ...]) -> bool:
    """`name` is one of `packages` or a module inside one (app.payments_provider is not in app.payments)."""
    return any(name == package or name.startswith(package + ".") for package in packages)


def imports(path: Path) -> set[str]:
    """Every module this file imports (for `from x import y`: x, and x.y when that is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(
                f"{node.module}.{alias.name}" for alias in node.names if f"{node.module}.{alias.name}" in MODULES
            )
    return found


def names_from_flask(path: Path) -> set[str]:
    return {
        alias.name
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module in ("flask", "flask_login")
        for alias in node.names
    }


RULES = sorted(name for name in MODULES if name.startswith("app.consultations"))


@pytest.mark.parametrize("module", RULES)
def test_rules_never_read_the_request_or_the_running_app(module):
    forbidden = names_from_flask(MODULES[module]) & {"request", "current_app", "session", "g", "current_user"}
    assert not forbidden, f"{module} imports {forbidden} from flask"


@pytest.mark.parametrize("module", RULES)
def test_rules_never_import_a_door_or_the_cli(module):
    doors = {
        name for name in imports(MODULES[module]) if within(name, (*BLUEPRINTS, "app.cli", "app.runtime", "app.demo"))
    }
    assert not doors, f"{module} imports {doors}"


@pytest.mark.parametrize("module", sorted(name for name in MODULES if name.startswith("app.cli")))
def test_the_cli_never_imports_a_blueprint(module):
    # The condition library's content module is plain data, not the blueprint's routes.
    allowed = ("app.conditions.content", "app.conditions.library")
    doors = {name for name in imports(MODULES[module]) if within(name, BLUEPRINTS) and not within(name, allowed)}
    assert not doors, f"{module} imports {doors}"


def test_no_import_circles():
    graph = {
        name: {other for other in imports(path) if other in MODULES and other != name} for name, path in MODULES.items()
    }
    # A package's __init__ importing its own modules (blueprint registration) is not a circle of rules.
    for name, targets in graph.items():
        graph[name] = {t for t in targets if not (t.startswith(name + ".") and MODULES[name].name == "__init__.py")}
    graph = {
        name: {t for t in targets if not (MODULES[t].name == "__init__.py" and name.startswith(t + "."))}
        for name, targets in graph.items()
    }
    visiting, done, circles = set(), set(), []

    def visit(node: str, trail: list[str]) -> None:
        if node in done:
            return
        if node in visiting:
            circles.append([*trail[trail.index(node) :], node])
            return
        visiting.add(node)
        for target in sorted(graph[node]):
            visit(target, [*trail, node])
        visiting.discard(node)
        done.add(node)

    for module in sorted(graph):
        visit(module, [])
    assert not circles, "import circles: " + "; ".join(" -> ".join(circle) for circle in circles)
