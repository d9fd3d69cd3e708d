"""The version of autoinit: stated here once, read by the package metadata (``pyproject.toml``),
the saved schemes and the MLflow tags.

Example:
    >>> from autoinit.version import __version__
    >>> __version__.count(".")
    2
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
