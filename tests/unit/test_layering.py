"""The layers of `docs/architecture.md`, read from the source: no import points outward.

    domain ← ports, config ← services ← adapters ← bootstrap ← api, worker, loadtest ← cli

A module may import its own layer and the ones to its left. Besides that: only
`bootstrap` imports the adapter registry, an adapter package imports no other backend's
package (shared helpers such as `paging` or `dialects` are fine), and the siblings
`api`, `worker` and `loadtest` do not import one another.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "eventpro"
LAYERS = {
    "domain": 0,
    "ports": 1,
    "config": 1,
    "services": 2,
    "adapters": 3,
    "bootstrap": 4,
    "api": 5,
    "worker": 5,
    "loadtest": 5,
    "web": 5,
    "cli": 6,
    "__main__": 6,
    "__init__": 0,
}
BACKENDS = {"memory", "sqlite", "postgres", "mysql", "redis", "dynamodb", "sqs"}


def _modules() -> list[tuple[str, Path]]:
    return [
        (".".join(path.relative_to(SRC.parent).with_suffix("").parts), path)
        for path in sorted(SRC.rglob("*.py"))
    ]


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] == "eventpro"}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _problem(module: str, imported: str) -> str | None:
    """Why `module` may not import `imported`, or None if it may."""
    mine, theirs = _part(module), _part(imported)
    if theirs not in LAYERS or (mine == theirs and mine != "adapters"):
        return None
    if LAYERS[theirs] > LAYERS[mine]:
        return f"{module} (layer {mine}) imports outward: {imported}"
    if theirs == "adapters" and mine not in ("adapters", "bootstrap"):
        return f"{module} opens adapters itself: {imported} (go through bootstrap)"
    if mine == theirs == "adapters":
        here, there = module.split(".")[2:3], imported.split(".")[2:3]
        if there and there[0] in BACKENDS and here != there:
            return f"{module} imports another backend's package: {imported}"
    if LAYERS[mine] == LAYERS[theirs] == 5 and mine != theirs:
        return f"{module} imports its sibling layer: {imported}"
    return None


@pytest.mark.parametrize(("module", "path"), _modules(), ids=[m for m, _ in _modules()])
def test_no_module_imports_against_the_layers(module: str, path: Path) -> None:
    problems = [p for name in _imports(path) if (p := _problem(module, name))]
    assert not problems, "\n".join(problems)


def test_the_check_catches_an_import_against_the_layers() -> None:
    assert _problem("eventpro.domain.model", "eventpro.ports")
    assert _problem("eventpro.api.app", "eventpro.adapters.sqlite")
    assert _problem("eventpro.api.app", "eventpro.worker.loop")
    assert _problem("eventpro.adapters.synchronous", "eventpro.adapters.mysql.store")
    assert _problem("eventpro.loadtest.replay", "eventpro.cli.bench")
    assert _problem("eventpro.cli.bench", "eventpro.adapters")
    assert _problem("eventpro.adapters.postgres.unsafe", "eventpro.adapters.postgres") is None
    assert _problem("eventpro.cli.server", "eventpro.worker.loop") is None
