"""The import contracts in ``.importlinter`` hold for the whole package."""

import subprocess
import sys
from pathlib import Path

# The directory holding `.importlinter` and the `shelfwise` package.
PROJECT_ROOT = Path(__file__).parents[1]
# lint-imports is installed next to the interpreter running the tests, even if no venv is active.
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

EXPECTED_CONTRACTS = (
    "Features depend only on lower features and the platform",
    "Inside a feature, modules depend only on lower layers",
    "Services reach storage only through ports and know nothing of HTTP",
    "Services do not import web or database frameworks directly",
    "Features reach the cache only through the tenant cache, which builds every key",
)


def test_import_contracts_are_kept() -> None:
    result = subprocess.run(
        [str(LINT_IMPORTS), ".importlinter", "--no-cache"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    # Guards against a config that silently checks nothing.
    for contract in EXPECTED_CONTRACTS:
        assert f"{contract} KEPT" in result.stdout
    assert f"Contracts: {len(EXPECTED_CONTRACTS)} kept, 0 broken." in result.stdout
