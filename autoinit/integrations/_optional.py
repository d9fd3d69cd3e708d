"""Optional libraries: imported on demand, a missing one is a one-line error naming the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from autoinit.errors import MissingDependency

__all__ = ["EXTRAS", "require"]

# importable name -> (the name pip knows, the torch-autoinit extra that installs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "transformers": ("transformers", "hf"),
    "lightning": ("lightning", "lightning"),
    "optuna_dashboard": ("optuna-dashboard", "dashboard"),
}


def require(name: str, user: str) -> ModuleType:
    """Import ``name`` for ``user`` (the module or function that needs it).

    Raises:
        MissingDependency: ``name`` cannot be imported; the message says what to install.
    """
    try:
        return importlib.import_module(name)
    except ImportError:
        package, extra = EXTRAS[name]
        raise MissingDependency(f"{user} needs {package}, which is not installed here; "
                                f"pip install 'torch-autoinit[{extra}]'") from None
