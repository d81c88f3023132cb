"""The layering is a rule, not a wish: imports inside the package only point down."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "airflow_provider_osscse"
NAME = "airflow_provider_osscse"

#: Rank of each layer; a module may import only from layers of lower or equal rank.
LAYERS = {
    "envelope": 0,
    "keys": 1,
    "transport": 2,
    "hooks": 3,
    "operators": 4,
    "sensors": 4,
    "triggers": 4,
    "cli": 4,
    "lineage": 4,
}
#: Third-party packages that would mean I/O or Airflow inside the pure core.
FORBIDDEN_IN_ENVELOPE = {"airflow", "oss2", "hvac", "alibabacloud_oss_v2", "alibabacloud_kms20160120",
                         "requests", "socket", "http", "urllib3", "aliyunsdkcore"}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level:
            # Resolve relative imports against the module's package.
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts[: -node.level]
            names.append(".".join(parts + ((node.module,) if node.module else ())))
    return names


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != NAME or len(parts) < 2:
        return None
    return parts[1]


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_package_imports_point_down_the_layers(path: Path) -> None:
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    for module in _imports(path):
        target = _layer_of(module)
        if target is None or target == own:
            continue
        if own == "testing":
            assert target == "testing", f"{path}: the local services must stay standalone, imports {module}"
            continue
        if own not in LAYERS or target not in LAYERS:
            continue
        assert LAYERS[target] <= LAYERS[own], f"{path} ({own}) imports {module} from the higher layer {target}"


@pytest.mark.parametrize(
    "path", [p for p in _modules() if p.relative_to(PACKAGE).parts[0] == "envelope"],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_envelope_core_has_no_io_and_no_airflow(path: Path) -> None:
    for module in _imports(path):
        assert module.split(".")[0] not in FORBIDDEN_IN_ENVELOPE, f"{path} imports {module}"
