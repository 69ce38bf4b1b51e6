"""The Feast tier: a real Feast SDK (0.67, in its own virtualenv .feast-venv, made by
tests/feast_peer/venv.sh) calling a real Larder server over HTTP. Run with `make feast`
(part of `make test`), or `pytest tests/feast_peer -m feast` once the venv exists.

Without the venv the tier is skipped, except under CI=true, where that fails.
"""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FEAST_VENV = Path(os.environ.get("LARDER_FEAST_VENV", ROOT / ".feast-venv"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.feast)


@pytest.fixture(scope="session")
def feast_python() -> Path:
    """The Feast virtualenv's interpreter (Feast is never imported by Larder's own)."""
    python = FEAST_VENV / "bin" / "python"
    if not (FEAST_VENV / ".installed").exists() or not python.exists():
        how = "run tests/feast_peer/venv.sh (make feast does)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{FEAST_VENV} not found (CI=true: the feast tier must run): {how}", pytrace=False)
        pytest.skip(f"{FEAST_VENV} not found: {how}")
    version = subprocess.run(  # noqa: S603 - the venv's own interpreter
        [str(python), "-c", "import importlib.metadata as m; print(m.version('feast'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version == "0.67.0", f"{FEAST_VENV} has feast {version}, expected 0.67.0: remove it and rerun venv.sh"
    return python
