"""The arrows between apps point one way (docs/architecture.md, "Which way the arrows point").

Every import in the application packages is read from the source (module top, function-local and
``TYPE_CHECKING`` alike), so a function-local import can no longer hide an arrow pointing back.

    config ──► dashboard ──► audits ──► synth_engine ──► governance ──► core

An app imports only itself and the apps to its right. The pure packages (the schema vocabulary,
the generators, the privacy accountants, the assurance game, the audit metrics) sit below every
app: any app may import them; they import only each other, never Django or an app.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Lowest first: an app may import the ones before it.
LAYERS = ("core", "governance", "synth_engine", "audits", "dashboard", "config")
PURE = ("core.schema", "synth_engine.generators", "synth_engine.privacy", "synth_engine.assurance", "audits.metrics")
# The one arrow against the direction, by design: a ledger row names the job that spent it
# (``BudgetEntry.job``, a foreign key to ``synth_engine.GenerationJob`` given by name), and the
# ledger's service annotates that argument, importing the model under ``TYPE_CHECKING`` only.
KNOWN_UPWARD = {("governance.services.budget", "synth_engine.models.GenerationJob")}
FRAMEWORKS = ("django", "rest_framework", "drf_spectacular", "celery", "django_celery_beat")


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _pure(module: str) -> bool:
    return any(_within(module, package) for package in PURE)


def _imports() -> list[tuple[str, int, str, str]]:
    """(file, line, importing module, imported module) for every absolute import in the apps."""
    found = []
    for app in LAYERS:
        for path in sorted((REPO / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            relative = path.relative_to(REPO)
            module = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    targets = [f"{node.module}.{alias.name}" for alias in node.names]
                else:
                    continue
                found += [(str(relative), node.lineno, module, target) for target in targets]
    return found


def _layer(module: str) -> int | None:
    top = module.split(".")[0]
    return LAYERS.index(top) if top in LAYERS else None


def _above(target: str, module: str) -> bool:
    target_layer, module_layer = _layer(target), _layer(module)
    return target_layer is not None and module_layer is not None and target_layer > module_layer


def test_apps_import_only_the_apps_below_them() -> None:
    upward = [
        f"{where}:{line} {module} imports {target}"
        for where, line, module, target in _imports()
        if not _pure(module) and not _pure(target) and (module, target) not in KNOWN_UPWARD and _above(target, module)
    ]
    assert upward == [], "imports against the arrows (see docs/architecture.md):\n" + "\n".join(upward)


def test_pure_packages_import_no_framework_and_no_app() -> None:
    impure = [
        f"{where}:{line} {module} imports {target}"
        for where, line, module, target in _imports()
        if _pure(module)
        and (
            (_layer(target) is not None and not _pure(target))
            or any(_within(target, framework) for framework in FRAMEWORKS)
        )
    ]
    assert impure == [], "the pure packages must stay free of Django and app code:\n" + "\n".join(impure)


def test_the_check_sees_every_app_and_pure_package() -> None:
    modules = {module for _, _, module, _ in _imports()}
    assert {module.split(".")[0] for module in modules} == set(LAYERS)
    assert all(any(_within(module, package) for module in modules) for package in PURE)
