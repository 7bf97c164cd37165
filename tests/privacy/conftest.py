"""Shared helpers for the privacy tests: the golden corpus lives next to them in corpus.py."""

from __future__ import annotations

import sys
from pathlib import Path

# With --import-mode=importlib test folders are not packages; make corpus.py importable.
sys.path.insert(0, str(Path(__file__).parent))
