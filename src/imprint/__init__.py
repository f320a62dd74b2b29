"""imprint: weight imprinting for foundation models (Westerhoff et al., TMLR 2025), made fast.

The public names load on first use, so that light modules (config checks, task definitions)
import without PyTorch: the workflow's planning stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "ImprintingClassifier": "imprint.method.classifier",
    "NAMED_METHODS": "imprint.study.methods",
    "sweep": "imprint.method.engine",
    "nc1": "imprint.method.collapse",
    "expand_grid": "imprint.study.grid",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'imprint' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
