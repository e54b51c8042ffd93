"""Where the tests find the repository's own files (deploy/, scripts/, benchmarks/, data)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[2]
DATA: Final = REPO / "tests" / "data"  # databases of earlier mains, for the upgrade tests
