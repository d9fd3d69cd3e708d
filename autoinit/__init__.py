"""autoinit: find good weight initializations for PyTorch models automatically.

The names below are the public API (the README shows each); the rest is reachable from the
submodules (``autoinit.search.run_search``, ``autoinit.plan.ModelPlan``, ``autoinit.families``,
``autoinit.layers``, ``autoinit.errors``, ...).

Example:
    >>> import torch.nn as nn, autoinit
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> scheme = autoinit.uniform_scheme(net, "kaiming_normal")
    >>> _ = autoinit.apply_scheme(net, scheme)
"""

from autoinit.api import fit, load_scheme
from autoinit.apply import apply_scheme
from autoinit.diagnose import diagnose
from autoinit.errors import AutoinitError, ConfigError, SchemeError, StorageError, TrackingWarning
from autoinit.families import list_families, register_family
from autoinit.layers import register_layer_kind
from autoinit.plan import uniform_scheme
from autoinit.result import FitResult
from autoinit.roles import describe_model
from autoinit.scheme import GroupRule, InitScheme
from autoinit.selection import Selection
from autoinit.status import study_status
from autoinit.version import __version__

__all__ = [
    "AutoinitError",
    "ConfigError",
    "FitResult",
    "GroupRule",
    "InitScheme",
    "SchemeError",
    "Selection",
    "StorageError",
    "TrackingWarning",
    "__version__",
    "apply_scheme",
    "describe_model",
    "diagnose",
    "fit",
    "list_families",
    "load_scheme",
    "register_family",
    "register_layer_kind",
    "study_status",
    "uniform_scheme",
]
