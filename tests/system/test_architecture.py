"""The hub's layout holds its rules (docs/architecture.md): each folder says what it owns and what
it may import, imports go one way, from the feature folders down to `core`, and the edge never
needs the hub.

Read from the source with `ast` (imports inside functions and under TYPE_CHECKING count too), so
a new import that breaks a rule fails here, with the module, the import and the rule.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tests.support.paths import REPO

HUB = REPO / "hub"

# A folder may import the folders of a lower rank, and its own. `config` reads the sections of
# the folders whose settings it validates; `app` builds and wires everything.
RANK: Final = {
    "core": 0,
    "registry": 1,
    "telemetry": 0.5,
    "access": 2,
    "alerts": 2,
    "notify": 3,
    "watch": 3,
    "ingest": 4,
    "escalation": 4,
    "config": 4.5,
    "console": 5,
    "family": 5,
    "supervisor": 5,
    "commissioning": 5,
    "http": 6,
    "app": 7,
}
# Any routes module may use these: who may call it and what their scope reaches, the hub's parts
# it asks for, bounded parameters, the live streams' timing and the pages' files.
ROUTE_HELPERS: Final = frozenset(
    {
        "hub.access.permissions",
        "hub.access.scope",
        "hub.http.deps",
        "hub.http.params",
        "hub.http.streams",
        "hub.http.web_files",
    }
)


@dataclass(frozen=True, slots=True)
class Import:
    module: str  # the importing module, "hub.watch.rules"
    target: str  # the imported module, "hub.core.clock"
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def folder_of(module: str) -> str | None:
    """The hub folder (or top-level module: `app`, `config`) a module belongs to."""
    parts = module.split(".")
    return parts[1] if parts[0] == "hub" and len(parts) > 1 else None


def imports_of(path: Path) -> Iterator[Import]:
    module = module_name(path)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            yield Import(module, target, node.lineno)


def hub_modules() -> list[Path]:
    return sorted(p for p in HUB.rglob("*.py") if p.parent != HUB or p.name != "__init__.py")


def allowed(found: Import) -> bool:
    source, target = folder_of(found.module), folder_of(found.target)
    if target is None or source == target:
        return True
    if found.module.endswith("routes") and found.target in ROUTE_HELPERS:
        return True
    assert source in RANK, f"{found.module}: a hub folder docs/architecture.md does not place"
    assert target in RANK, f"{found.target}: a hub folder docs/architecture.md does not place"
    return RANK[target] < RANK[source]


def test_every_hub_folder_is_ranked_and_says_what_it_owns_and_imports() -> None:
    folders = sorted(p.name for p in HUB.iterdir() if (p / "__init__.py").is_file())
    modules = sorted(p.stem for p in HUB.glob("*.py") if p.name != "__init__.py")
    assert sorted(RANK) == sorted([*folders, *modules])
    for name in folders:
        doc = ast.get_docstring(ast.parse((HUB / name / "__init__.py").read_text()))
        assert doc and "import" in doc.lower(), f"hub/{name}/__init__.py: say what it imports"


def test_every_hub_module_opens_with_a_docstring() -> None:
    missing = [
        str(path.relative_to(REPO))
        for path in hub_modules()
        if not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert missing == []


def test_hub_folders_import_only_downwards() -> None:
    found = [i for path in hub_modules() for i in imports_of(path) if i.target.startswith("hub.")]
    broken = [f"{i.module} (line {i.line}) imports {i.target}" for i in found if not allowed(i)]
    assert broken == [], "imports against docs/architecture.md's rules:\n" + "\n".join(broken)


# What each package outside the hub may import of carewatch's own packages.
MAY_IMPORT: Final = {
    "contract": set(),  # what the edge and the hub agree on, below both
    "device_profiles": {"contract"},
    "edge": {"contract", "device_profiles"},  # runs on a small gateway: never the hub
}
OWN_PACKAGES: Final = frozenset(
    {"contract", "device_profiles", "edge", "hub", "simulators", "carewatch", "benchmarks"}
)


def test_the_contract_device_profiles_and_edge_import_only_what_is_below_them() -> None:
    for package, may in MAY_IMPORT.items():
        for path in sorted((REPO / package).rglob("*.py")):
            wrong = sorted(
                f"{i.target} (line {i.line})"
                for i in imports_of(path)
                if i.target.split(".")[0] in OWN_PACKAGES - {package} - may
            )
            assert wrong == [], f"{path.relative_to(REPO)} imports {wrong}"


def test_the_hub_imports_the_edge_only_to_write_a_gateways_configuration() -> None:
    """The wire and the YAML checks are the contract's; the edge's own configuration model is
    needed only where the hub writes a gateway's edge.yaml bundle."""
    importers = {
        i.module for path in hub_modules() for i in imports_of(path) if i.target.startswith("edge")
    }
    assert importers == {"hub.commissioning.provisioning"}


def test_a_routes_module_never_imports_another_folders_routes() -> None:
    made = {
        (found.module, found.target)
        for path in hub_modules()
        for found in imports_of(path)
        if found.target.startswith("hub.")
        and found.target.endswith("routes")
        and folder_of(found.module) not in (folder_of(found.target), "app", "http")
    }
    assert made == set()
