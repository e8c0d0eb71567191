"""The dependency direction of STYLE.md, checked by import-linter's contracts in pyproject:
the layers (entry points → workers → domain → db, classifiers → settings) and four forbidden
imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def test_import_contracts_hold() -> None:
    result = subprocess.run([sys.executable, "-c", LINT_IMPORTS], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "layers: entry points -> workers -> domain services" in result.stdout
    assert "5 kept, 0 broken" in result.stdout
