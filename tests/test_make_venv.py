"""``make venv`` compiles bytecode for everything it installs.

Observed (issue 14): uv does not compile bytecode by default, and with ``PYTHONDONTWRITEBYTECODE``
set (as on the project's machines) Python never writes ``.pyc`` at import time either, so every
command recompiled its imports: ``osscse inspect`` took 3.1 s and ``import airflow.sdk`` 2.6 s
(1.3 s and 1.15 s with bytecode). The install step itself must compile: ``--compile-bytecode`` for
the dependencies, ``compileall`` for the project (an editable install, outside site-packages).

Checked on the recipe ``make`` would run (``make -n``: printed, not executed), for a fresh venv.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def venv_recipe(venv: Path) -> list[str]:
    """The commands ``make venv`` runs to build ``venv`` from nothing (dry run)."""
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", "venv", f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_venv_compiles_bytecode_for_the_dependencies_and_the_project(tmp_path: Path) -> None:
    recipe = venv_recipe(tmp_path / "venv")
    installs = [line for line in recipe if " pip install " in line and "-c constraints.txt" in line]
    assert len(installs) == 1, recipe
    assert "--compile-bytecode" in installs[0].split(), installs[0]
    compiles = [line for line in recipe if "-m compileall" in line]
    assert len(compiles) == 1 and "airflow_provider_osscse" in compiles[0].split(), recipe
    assert compiles[0].startswith(f"{tmp_path / 'venv'}/bin/python "), compiles[0]
    assert recipe.index(compiles[0]) > recipe.index(installs[0])  # after the install, with its interpreter
