"""``InitScheme``: a small, versioned, human-readable description of how to initialize a model.

A scheme lists groups of parameters, each with one rule (family, scale, bias rule, the
activation the family's gain is taken for, a branch-output multiplier and a depth exponent), plus
the seed, the model's residual depth ``L`` and a fingerprint of the model it was made for.
Saved as JSON, loaded without running any code; every malformed value is a :class:`SchemeError`
naming the key and the value. Format 2 added the multiplier, the depth exponent and the depth;
a format-1 file reads as multiplier 1, exponent 0 and no depth, which applies as it did.

Example:
    >>> rule = GroupRule("kaiming_normal", scale=1.0, nonlinearity="relu", members=("0.weight",))
    >>> s = InitScheme({"hidden.linear": rule}, seed=0, parameters={"0.weight": (4, 3)})
    >>> InitScheme.from_json(s.to_json()) == s
    True
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from autoinit.errors import AutoinitError, SchemeError
from autoinit.families import BIAS_RULES, GAINS, get_family
from autoinit.version import __version__

__all__ = ["FORMAT_VERSION", "GroupRule", "InitScheme", "fingerprint", "rules_from_json", "rules_to_json"]

FORMAT_VERSION = 3  # 3: a branch-ending norm's gain takes its rule's multiplier and L**α
READABLE_VERSIONS = (1, 2, 3)  # 2 added multipliers and depth exponents; 1 had neither
PARTS = ("all", "query")  # what part of a weight a rule's multiplier scales
MAX_MAGNITUDE = 1e4  # scales and bias values beyond this are refused as tampered or mistyped


def fingerprint(parameters: Mapping[str, tuple[int, ...]]) -> str:
    """A short hash of parameter names and shapes (order-independent)."""
    text = ";".join(f"{k}:{'x'.join(map(str, v))}" for k, v in sorted(parameters.items()))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class GroupRule:
    """How every parameter in one group is initialized.

    Attributes:
        family: a registered family for the weights (norm layers: for gamma).
        scale: multiplier on the family's own standard deviation (norm ``constant``: the value).
        bias: a bias rule (see ``autoinit.families.BIAS_RULES``); also sets norm betas.
        bias_value: the constant, the normal's std, or the forget-gate offset.
        nonlinearity: the activation whose gain the family uses.
        options: family options, e.g. ``{"mode": "fan_out"}`` for Kaiming.
        members: full names of the parameters in the group.
        multiplier: a factor on the weights, ``0`` for exactly zero (a residual branch's last
            layer, the readout; Fixup, SkipInit, ReZero, μP's zero readout).
        part: what the multiplier scales: ``"all"`` the whole weight, ``"query"`` only the query
            block of an attention input projection (its value block takes the depth factor, as
            in T-Fixup and DeepNet; keys take neither).
        depth_exponent: ``α`` in a factor ``L**α`` on the weights (value block only under
            ``part="query"``), ``L`` being the scheme's ``depth`` (GPT-2's ``1/sqrt(2·layers)``
            is ``α = -1/2`` with one branch per attention and per MLP block).
    """

    family: str
    scale: float = 1.0
    bias: str = "zeros"
    bias_value: float = 0.0
    nonlinearity: str = "linear"
    options: Mapping[str, float | str] = field(default_factory=dict)
    members: tuple[str, ...] = ()
    multiplier: float = 1.0
    part: str = "all"
    depth_exponent: float = 0.0

    def to_dict(self, members: bool = True) -> dict[str, Any]:
        """The rule as JSON values; ``members=False`` leaves the parameter names out (a trial's
        record of its rules, which the model's plan fills in again).

        Example:
            >>> rule = GroupRule("orthogonal", scale=1.5)
            >>> GroupRule.from_dict(rule.to_dict(members=False)) == rule
            True
        """
        out = {"family": self.family, "scale": self.scale, "bias": self.bias,
               "bias_value": self.bias_value, "nonlinearity": self.nonlinearity,
               "options": dict(self.options), "multiplier": self.multiplier, "part": self.part,
               "depth_exponent": self.depth_exponent}
        return {**out, "members": list(self.members)} if members else out

    @classmethod
    def from_dict(cls, data: Any, path: str = "rule") -> GroupRule:
        """Validate a parsed rule (``members`` may be left out); every problem is a
        :class:`SchemeError` naming ``path`` and the key."""
        if isinstance(data, dict) and "members" not in data:
            data = {**data, "members": []}
        return _read_rule(_Reader(data, path), version=None)


def rules_to_json(groups: Mapping[str, GroupRule]) -> str:
    """A scheme's rules without their members, as one JSON text: what a trial records
    (``trial.user_attrs["rules"]``) and what tracking and ``status`` read back with
    :func:`rules_from_json`."""
    return json.dumps({name: rule.to_dict(members=False) for name, rule in groups.items()})


def rules_from_json(text: str) -> dict[str, GroupRule]:
    """The rules :func:`rules_to_json` wrote; a malformed text is a :class:`SchemeError`.

    Example:
        >>> rules_from_json(rules_to_json({"all": GroupRule("xavier_uniform")}))["all"].family
        'xavier_uniform'
    """
    try:
        data = json.loads(text)
    except (TypeError, ValueError, RecursionError) as exc:
        raise SchemeError(f"trial rules are not valid JSON: {exc}") from None
    groups = _Reader(data, "rules")
    return {name: GroupRule.from_dict(groups.data[name], f"rules.{name}") for name in groups.names()}


@dataclass(frozen=True)
class InitScheme:
    """A complete initialization of one model architecture.

    Attributes:
        groups: group name to rule.
        seed: the seed every parameter's generator is derived from.
        parameters: every parameter of the model with its shape (tied ones once).
        model_class: the model's class name, for people reading the file.
        autoinit_version, torch_version: what wrote it.
        origin: what the scheme is, in words (``"the lsuv baseline: ..."``, ``"search trial 29"``);
            written to JSON only when set.
        depth: ``L``, the number of residual branches of the model (0: none found), the base of
            the rules' depth factors.
    """

    groups: Mapping[str, GroupRule]
    seed: int = 0
    parameters: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    model_class: str = ""
    autoinit_version: str = ""
    torch_version: str = ""
    origin: str = ""
    depth: int = 0

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.parameters)

    def with_seed(self, seed: int) -> InitScheme:
        """The same scheme with another seed."""
        return replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "autoinit_version": self.autoinit_version,
            "torch_version": self.torch_version,
            **({"origin": self.origin} if self.origin else {}),
            "seed": self.seed,
            "depth": self.depth,
            "model": {
                "class": self.model_class,
                "fingerprint": self.fingerprint,
                "parameters": {k: list(v) for k, v in self.parameters.items()},
            },
            "groups": {name: r.to_dict() for name, r in self.groups.items()},
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """The scheme as indented JSON; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> InitScheme:
        """Parse JSON text, or read it from a path; never runs code."""
        text, what = str(text_or_path), "scheme"
        if isinstance(text_or_path, Path) or not text.lstrip().startswith("{"):
            what = f"scheme file {str(text_or_path)!r}"
            try:
                text = Path(text_or_path).read_text()
            except (OSError, ValueError) as exc:  # ValueError: a NUL byte, not UTF-8
                raise SchemeError(f"cannot read {what}: {exc}") from None
        try:
            # NaN/Infinity parse to floats that the typed readers refuse, naming the key.
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:  # also too many digits, too deep
            raise SchemeError(f"{what} is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> InitScheme:
        """Validate a parsed scheme; every problem is a :class:`SchemeError` naming the key."""
        d = _Reader(data, "scheme")
        version = d.int("format_version")
        if version not in READABLE_VERSIONS:
            raise SchemeError(f"scheme.format_version must be 1, 2 or 3, got {version}")
        model = d.sub("model")
        params = model.sub("parameters")
        parameters = {k: params.shape(k) for k in params.names()}
        groups = d.sub("groups")
        scheme = cls(
            groups={name: _read_rule(groups.sub(name), version) for name in groups.names()},
            seed=d.int("seed"),
            parameters=parameters,
            model_class=model.str("class"),
            autoinit_version=d.str("autoinit_version"),
            torch_version=d.str("torch_version"),
            origin=d.str("origin") if "origin" in data else "",
            depth=d.int("depth") if version >= 2 else 0,
        )
        for name, rule in scheme.groups.items():
            if rule.depth_exponent and not scheme.depth:
                raise SchemeError(f"scheme.groups.{name}.depth_exponent is {rule.depth_exponent:g} "
                                  "but scheme.depth is 0: a depth factor needs the model's depth")
        stated = model.str("fingerprint")
        if stated != scheme.fingerprint:
            raise SchemeError(
                f"scheme.model.fingerprint is {stated!r} but the listed parameters hash to "
                f"{scheme.fingerprint!r}: the file was edited or truncated"
            )
        model.no_extra()
        d.no_extra()
        return scheme


def _read_rule(r: _Reader, version: int | None) -> GroupRule:
    """One rule; ``version`` 1 has no multiplier, part or depth exponent, 2 and 3 have all
    three, and ``None`` (a trial's record) may have them or not."""
    family = r.str("family")
    try:
        fam = get_family(family)
    except AutoinitError as exc:
        raise SchemeError(f"{r.path}.family: {exc}") from None
    bias = r.str("bias")
    if bias not in BIAS_RULES:
        raise SchemeError(f"{r.path}.bias must be one of {sorted(BIAS_RULES)}, got {bias!r}")
    nonlinearity = r.str("nonlinearity")
    if nonlinearity not in GAINS:
        raise SchemeError(
            f"{r.path}.nonlinearity must be one of {sorted(GAINS)}, got {nonlinearity!r}"
        )
    opts = r.sub("options")
    options = {k: opts.option(k) for k in opts.names()}
    unknown = sorted(set(options) - set(fam.options))
    if unknown:
        raise SchemeError(
            f"{r.path}.options: family {family!r} takes {sorted(fam.options)}, got {unknown}"
        )
    members = r.list_of_str("members")
    new = version in (2, 3) or (version is None and "multiplier" in r.data)
    part = r.str("part") if new else "all"
    if part not in PARTS:
        raise SchemeError(f"{r.path}.part must be one of {list(PARTS)}, got {part!r}")
    rule = GroupRule(
        family=family,
        scale=r.number("scale", low=0.0),
        bias=bias,
        bias_value=r.number("bias_value"),
        nonlinearity=nonlinearity,
        options=options,
        members=tuple(members),
        multiplier=r.number("multiplier", low=0.0) if new else 1.0,
        part=part,
        depth_exponent=r.number("depth_exponent") if new else 0.0,
    )
    if not -4 <= rule.depth_exponent <= 4:
        raise SchemeError(f"{r.path}.depth_exponent must be in [-4, 4], got {rule.depth_exponent!r}")
    r.no_extra()
    return rule


class _Reader:
    """Typed access to one JSON object, with errors that carry the key path."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise SchemeError(f"{path} must be an object, got {type(data).__name__}: {data!r:.60}")
        self.data, self.path, self.used = data, path, set()

    def names(self) -> list[str]:
        self.used.update(self.data)
        return list(self.data)

    def _get(self, key: str) -> Any:
        if key not in self.data:
            raise SchemeError(f"{self.path}.{key} is missing")
        self.used.add(key)
        return self.data[key]

    def _bad(self, key: str, what: str, value: Any) -> SchemeError:
        return SchemeError(f"{self.path}.{key} must be {what}, got {value!r:.80}")

    def sub(self, key: str) -> _Reader:
        return _Reader(self._get(key), f"{self.path}.{key}")

    def str(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise self._bad(key, "a string", value)
        return value

    def int(self, key: str) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
            raise self._bad(key, "a non-negative integer below 2**63", value)
        return value

    def number(self, key: str, low: float = -MAX_MAGNITUDE) -> float:
        value = self._get(key)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        # bounds first: math.isfinite overflows on a huge int (NaN fails the bounds too)
        if not ok or not low <= value <= MAX_MAGNITUDE or not math.isfinite(value):
            raise self._bad(key, f"a finite number in [{low:g}, {MAX_MAGNITUDE:g}]", value)
        return float(value)

    def option(self, key: str) -> float | str:
        value = self._get(key)
        return value if isinstance(value, str) else self.number(key)

    def shape(self, key: str) -> tuple[int, ...]:
        value = self._get(key)
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**40 for v in value
        ):
            raise self._bad(key, "a list of non-negative integers", value)
        return tuple(value)

    def list_of_str(self, key: str) -> list[str]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(key, "a list of strings", value)
        return value

    def no_extra(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            raise SchemeError(f"{self.path} has unknown keys {extra}")


def current_versions() -> dict[str, str]:
    """The versions a new scheme records."""
    return {"autoinit_version": __version__, "torch_version": torch.__version__}
