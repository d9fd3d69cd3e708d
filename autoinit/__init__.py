"""autoinit: find good weight initializations for PyTorch models automatically.

Example:
    >>> import torch.nn as nn, autoinit
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> scheme = autoinit.uniform_scheme(net, "kaiming_normal")
    >>> _ = autoinit.apply_scheme(net, scheme)
"""

from autoinit.api import fit, load_scheme
from autoinit.apply import apply_scheme
from autoinit.diagnose import Diagnosis, diagnose
from autoinit.errors import (
    AutoinitError,
    ConfigError,
    MissingDependency,
    SchemeError,
    StorageError,
    TrackingError,
    TrackingWarning,
)
from autoinit.families import Family, Fans, get_family, list_families, register_family
from autoinit.groups import group_layers
from autoinit.layers import describe_params, in_out_rule, register_layer_kind
from autoinit.plan import ModelPlan, uniform_scheme
from autoinit.result import FitResult, SearchCost
from autoinit.roles import describe_model
from autoinit.scheme import GroupRule, InitScheme
from autoinit.search import Selection, run_search
from autoinit.status import StudyStatus, study_status
from autoinit.version import __version__

__all__ = [
    "AutoinitError",
    "ConfigError",
    "Diagnosis",
    "Family",
    "Fans",
    "FitResult",
    "GroupRule",
    "InitScheme",
    "MissingDependency",
    "ModelPlan",
    "SchemeError",
    "SearchCost",
    "Selection",
    "StorageError",
    "StudyStatus",
    "TrackingError",
    "TrackingWarning",
    "__version__",
    "apply_scheme",
    "describe_model",
    "describe_params",
    "diagnose",
    "fit",
    "get_family",
    "group_layers",
    "in_out_rule",
    "list_families",
    "load_scheme",
    "register_family",
    "register_layer_kind",
    "run_search",
    "study_status",
    "uniform_scheme",
]
