"""InitScheme: JSON round trips and validation (every malformed file is a SchemeError)."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoinit import GroupRule, InitScheme, SchemeError
from autoinit.scheme import FORMAT_VERSION, MAX_MAGNITUDE, fingerprint


def valid_scheme() -> InitScheme:
    return InitScheme(
        groups={
            "hidden.linear": GroupRule("kaiming_normal", scale=1.5, bias="constant",
                                       bias_value=0.01, nonlinearity="relu",
                                       options={"mode": "fan_out"},
                                       members=("0.weight", "0.bias")),
            "norm": GroupRule("constant", scale=1.0, members=("1.weight", "1.bias")),
            "head.linear": GroupRule("trunc_normal", scale=0.5, bias="normal", bias_value=0.001,
                                     options={"std": 0.05}, members=("2.weight", "2.bias")),
        },
        seed=42,
        parameters={"0.weight": (8, 4), "0.bias": (8,), "1.weight": (8,), "1.bias": (8,),
                    "2.weight": (2, 8), "2.bias": (2,)},
        model_class="Net",
        autoinit_version="0.1.0",
        torch_version=torch.__version__,
    )


VALID = valid_scheme()
VALID_TEXT = VALID.to_json()
VALID_DICT = json.loads(VALID_TEXT)
G = "scheme.groups.hidden.linear"


def load_dict(d) -> InitScheme:
    return InitScheme.from_json(json.dumps(d, allow_nan=True))


# ---------------------------------------------------------------------------- round trips


def test_round_trip_text():
    assert InitScheme.from_json(VALID_TEXT) == VALID
    assert InitScheme.from_json(VALID_TEXT).to_json() == VALID_TEXT
    assert InitScheme.from_dict(VALID.to_dict()) == VALID


def test_round_trip_path(tmp_path):
    path = tmp_path / "scheme.json"
    text = VALID.to_json(path)
    assert path.read_text() == text == VALID_TEXT
    assert InitScheme.from_json(path) == VALID
    assert InitScheme.from_json(str(path)) == VALID


def test_round_trip_keeps_types():
    s = InitScheme.from_json(VALID_TEXT)
    rule = s.groups["hidden.linear"]
    assert rule.members == ("0.weight", "0.bias") and isinstance(rule.members, tuple)
    assert s.parameters["0.weight"] == (8, 4) and isinstance(s.parameters["0.weight"], tuple)
    assert dict(rule.options) == {"mode": "fan_out"}
    assert s.groups["head.linear"].options["std"] == 0.05
    assert s.seed == 42 and s.fingerprint == VALID.fingerprint


def test_written_file_is_plain_json():
    d = json.loads(VALID_TEXT)
    assert d["format_version"] == FORMAT_VERSION
    assert d["model"]["fingerprint"] == fingerprint(VALID.parameters)
    assert list(d) == ["format_version", "autoinit_version", "torch_version", "seed", "depth",
                       "model", "groups"]


def test_with_seed_and_fingerprint_order_independent():
    assert VALID.with_seed(7).seed == 7 and VALID.with_seed(7).groups == VALID.groups
    assert fingerprint({"a": (1, 2), "b": (3,)}) == fingerprint({"b": (3,), "a": (1, 2)})
    assert fingerprint({"a": (1, 2)}) != fingerprint({"a": (2, 1)})


# -------------------------------------------------------------------------- malformed cases


def setter(*path, value):
    def mutate(d):
        node = d
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return mutate


def deleter(*path):
    def mutate(d):
        node = d
        for k in path[:-1]:
            node = node[k]
        del node[path[-1]]
    return mutate


HL = ("groups", "hidden.linear")
MALFORMED = [
    ("unknown-family", setter(*HL, "family", value="magic"), rf"{G}\.family.*'magic'"),
    ("family-not-str", setter(*HL, "family", value=3), rf"{G}\.family must be a string"),
    ("scale-as-string", setter(*HL, "scale", value="1.0"), rf"{G}\.scale must be"),
    ("scale-bool", setter(*HL, "scale", value=True), rf"{G}\.scale must be"),
    ("scale-negative", setter(*HL, "scale", value=-1.0), rf"{G}\.scale must be"),
    ("scale-1e300", setter(*HL, "scale", value=1e300), rf"{G}\.scale must be a finite"),
    ("scale-huge-int", setter(*HL, "scale", value=10**400), rf"{G}\.scale must be"),
    ("scale-just-over", setter(*HL, "scale", value=MAX_MAGNITUDE * 1.01), rf"{G}\.scale"),
    ("scale-nan", setter(*HL, "scale", value=float("nan")), rf"{G}\.scale must be a finite"),
    ("bias-value-inf", setter(*HL, "bias_value", value=float("inf")), rf"{G}\.bias_value"),
    ("bias-value--inf", setter(*HL, "bias_value", value=float("-inf")), rf"{G}\.bias_value"),
    ("bias-value--1e300", setter(*HL, "bias_value", value=-1e300), rf"{G}\.bias_value"),
    ("seed-negative", setter("seed", value=-1), r"scheme\.seed must be a non-negative"),
    ("seed-bool", setter("seed", value=True), r"scheme\.seed must be a non-negative"),
    ("seed-float", setter("seed", value=1.5), r"scheme\.seed must be"),
    ("seed-too-big", setter("seed", value=2**63), r"scheme\.seed must be"),
    ("seed-nan", setter("seed", value=float("nan")), r"scheme\.seed must be"),
    ("members-not-list", setter(*HL, "members", value="0.weight"), rf"{G}\.members must be a list"),
    ("members-not-str", setter(*HL, "members", value=[1]), rf"{G}\.members must be a list"),
    ("options-not-object", setter(*HL, "options", value=[]), rf"{G}\.options must be an object"),
    ("option-nan", setter(*HL, "options", "mode", value=float("nan")), rf"{G}\.options\.mode"),
    ("unknown-option", setter(*HL, "options", "gain", value=2.0),
     rf"{G}\.options: family 'kaiming_normal' takes \['mode'\], got \['gain'\]"),
    ("invalid-bias-rule", setter(*HL, "bias", value="ones"), rf"{G}\.bias must be one of.*'ones'"),
    ("invalid-nonlinearity", setter(*HL, "nonlinearity", value="swish"),
     rf"{G}\.nonlinearity must be one of.*'swish'"),
    ("rule-not-object", setter(*HL, value=[]), rf"{G} must be an object"),
    ("groups-not-object", setter("groups", value=[1]), r"scheme\.groups must be an object"),
    ("model-not-object", setter("model", value="Net"), r"scheme\.model must be an object"),
    ("class-not-str", setter("model", "class", value=None), r"scheme\.model\.class must be"),
    ("shape-negative", setter("model", "parameters", "0.bias", value=[-8]),
     r"scheme\.model\.parameters\.0\.bias must be a list of non-negative"),
    ("shape-bool", setter("model", "parameters", "0.bias", value=[True]),
     r"scheme\.model\.parameters\.0\.bias"),
    ("shape-inf", setter("model", "parameters", "0.bias", value=[float("inf")]),
     r"scheme\.model\.parameters\.0\.bias"),
    ("shape-not-list", setter("model", "parameters", "0.bias", value=8),
     r"scheme\.model\.parameters\.0\.bias"),
    ("version-4", setter("format_version", value=4), r"scheme\.format_version must be 1, 2 or 3, got 4"),
    ("version-string", setter("format_version", value="1"), r"scheme\.format_version must be"),
    ("version-missing", deleter("format_version"), r"scheme\.format_version is missing"),
    ("fingerprint-tampered-shape", setter("model", "parameters", "0.weight", value=[8, 5]),
     r"scheme\.model\.fingerprint"),
    ("fingerprint-tampered-name", lambda d: d["model"]["parameters"].update(extra=[1]),
     r"scheme\.model\.fingerprint"),
    ("fingerprint-removed-param", deleter("model", "parameters", "2.bias"),
     r"scheme\.model\.fingerprint"),
    ("fingerprint-edited", setter("model", "fingerprint", value="0" * 16),
     r"scheme\.model\.fingerprint"),
    ("extra-top-key", setter("comment", value="hi"), r"scheme has unknown keys \['comment'\]"),
    ("extra-model-key", setter("model", "notes", value=1),
     r"scheme\.model has unknown keys \['notes'\]"),
    ("extra-rule-key", setter(*HL, "gain", value=1.0), rf"{G} has unknown keys \['gain'\]"),
]
TOP_KEYS = list(VALID_DICT)
MODEL_KEYS = list(VALID_DICT["model"])
RULE_KEYS = list(VALID_DICT["groups"]["hidden.linear"])
MALFORMED += [(f"missing-{k}", deleter(k), rf"scheme\.{k} is missing") for k in TOP_KEYS]
MALFORMED += [(f"missing-model.{k}", deleter("model", k), rf"scheme\.model\.{k} is missing")
              for k in MODEL_KEYS]
MALFORMED += [(f"missing-rule.{k}", deleter(*HL, k), rf"{G}\.{k} is missing") for k in RULE_KEYS]


@pytest.mark.parametrize(("mutate", "match"), [c[1:] for c in MALFORMED],
                         ids=[c[0] for c in MALFORMED])
def test_malformed_scheme_names_the_key(mutate, match):
    d = copy.deepcopy(VALID_DICT)
    mutate(d)
    with pytest.raises(SchemeError, match=match):
        load_dict(d)


@pytest.mark.parametrize(("token", "key"), [("NaN", "scale"), ("Infinity", "bias_value"),
                                            ("-Infinity", "scale")])
def test_non_finite_tokens_name_the_key(token, key):
    text = re.sub(rf'("{key}": )[^,\n]+', rf"\g<1>{token}", VALID_TEXT, count=1)
    assert token in text
    with pytest.raises(SchemeError, match=rf"{G}\.{key} must be a finite number"):
        InitScheme.from_json(text)


def test_every_truncation_is_a_scheme_error():
    for end in range(len(VALID_TEXT.rstrip())):
        with pytest.raises(SchemeError):
            InitScheme.from_json(VALID_TEXT[:end])
    with pytest.raises(SchemeError, match="not valid JSON"):
        InitScheme.from_json(VALID_TEXT[: len(VALID_TEXT) // 2])


@pytest.mark.parametrize("text", [
    "\x00" + VALID_TEXT,  # not JSON, not a path either
    VALID_TEXT.replace('"scale": 1.5', '"scale": ' + "9" * 5000),  # over int digit limit
    '{"a": ' + "[" * 100_000,  # nesting deeper than the parser's recursion
    "[1, 2]",
    "",
    "null",
], ids=["nul-byte", "5000-digits", "deep-nesting", "array", "empty", "null"])
def test_pathological_text(text):
    with pytest.raises(SchemeError):
        InitScheme.from_json(text)


def test_surrogate_parameter_name():
    d = copy.deepcopy(VALID_DICT)
    d["model"]["parameters"]["\ud800"] = [1]
    with pytest.raises(SchemeError, match="fingerprint"):
        load_dict(d)


def test_not_an_object_and_missing_file(tmp_path):
    with pytest.raises(SchemeError, match="scheme must be an object"):
        InitScheme.from_dict([1, 2])
    with pytest.raises(SchemeError, match="cannot read scheme file"):
        InitScheme.from_json(tmp_path / "nope.json")
    with pytest.raises(SchemeError, match="cannot read scheme file"):
        InitScheme.from_json(str(tmp_path))
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe{")
    with pytest.raises(SchemeError):
        InitScheme.from_json(bad)


def test_a_file_that_is_not_json_is_named(tmp_path):
    study = tmp_path / "study.toml"  # a newcomer's slip: `autoinit show study.toml`
    study.write_text("[model]\n")
    with pytest.raises(SchemeError, match=r"^scheme file '.*study\.toml' is not valid JSON: "):
        InitScheme.from_json(study)
    with pytest.raises(SchemeError, match=r"^scheme file '.*study\.toml' is not valid JSON: "):
        InitScheme.from_json(str(study))


def test_valid_edge_values_load():
    d = copy.deepcopy(VALID_DICT)
    d["groups"]["hidden.linear"]["scale"] = 0
    d["groups"]["hidden.linear"]["bias_value"] = -MAX_MAGNITUDE
    d["seed"] = 2**63 - 1
    s = load_dict(d)
    assert s.groups["hidden.linear"].scale == 0.0 and isinstance(s.groups["hidden.linear"].scale,
                                                                 float)
    assert s.seed == 2**63 - 1


# ----------------------------------------------------------------------- property tests

PROPERTY = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def loads_or_scheme_error(text: str) -> None:
    try:
        s = InitScheme.from_json(text)
    except SchemeError as exc:
        assert str(exc)
    else:
        assert isinstance(s, InitScheme)
        assert InitScheme.from_json(s.to_json()) == s


def all_paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from all_paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from all_paths(v, (*prefix, i))


PATHS = list(all_paths(VALID_DICT))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-(10**400), 10**400)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
    | st.sampled_from(["kaiming_normal", "relu", "zeros", "fan_out", "0.weight"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def structural_mutation(draw):
    d = copy.deepcopy(VALID_DICT)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if not path:
            if action == "replace":
                d = draw(json_values)
            continue
        parent = d
        try:
            for k in path[:-1]:
                parent = parent[k]
            parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(st.text(max_size=6))] = draw(json_values)
    return json.dumps(d, allow_nan=True, indent=draw(st.sampled_from([None, 2])))


@PROPERTY
@given(structural_mutation())
def test_structural_mutations_only_raise_scheme_error(text):
    loads_or_scheme_error(text)


@PROPERTY
@given(st.data())
def test_text_edits_and_truncations_only_raise_scheme_error(data):
    text = VALID_TEXT
    for _ in range(data.draw(st.integers(1, 3))):
        start = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(start, min(len(text), start + 12)))
        text = text[:start] + data.draw(st.text(max_size=6)) + text[end:]
    if data.draw(st.booleans()):
        text = text[: data.draw(st.integers(0, len(text)))]
    loads_or_scheme_error(text)


@PROPERTY
@given(st.data())
def test_value_token_swaps_only_raise_scheme_error(data):
    # replace one scalar token of the file with another JSON token, keeping the file parseable
    tokens = list(re.finditer(r'"(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*|true|false|null', VALID_TEXT))
    m = data.draw(st.sampled_from(tokens))
    new = data.draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e300", "-0", "true",
                                     "null", '""', "[]", "{}", "1" * 400, "0.5", "-3", '"x"']))
    loads_or_scheme_error(VALID_TEXT[: m.start()] + new + VALID_TEXT[m.end():])



# ------------------------------------------------------------------------- format versions

V1_TEXT = json.dumps({
    "format_version": 1, "autoinit_version": "0.1.0", "torch_version": "2.13.0", "seed": 3,
    "model": {"class": "Net", "fingerprint": fingerprint({"0.weight": (8, 4)}),
              "parameters": {"0.weight": [8, 4]}},
    "groups": {"all": {"family": "orthogonal", "scale": 1.5, "bias": "zeros", "bias_value": 0.0,
                       "nonlinearity": "relu", "options": {}, "members": ["0.weight"]}},
})


def test_a_version_1_file_reads_as_multiplier_1_exponent_0_and_no_depth():
    scheme = InitScheme.from_json(V1_TEXT)
    rule = scheme.groups["all"]
    assert (rule.multiplier, rule.part, rule.depth_exponent, scheme.depth) == (1.0, "all", 0.0, 0)
    assert rule == GroupRule("orthogonal", scale=1.5, nonlinearity="relu", members=("0.weight",))
    written = json.loads(scheme.to_json())
    assert written["format_version"] == FORMAT_VERSION == 3 and written["depth"] == 0
    assert InitScheme.from_json(scheme.to_json()) == scheme


def test_a_version_1_file_with_version_2_keys_is_refused():
    d = json.loads(V1_TEXT)
    d["groups"]["all"]["multiplier"] = 0.0
    with pytest.raises(SchemeError, match=r"scheme\.groups\.all has unknown keys \['multiplier'\]"):
        load_dict(d)


def test_multiplier_part_and_depth_exponent_round_trip():
    rule = GroupRule("xavier_uniform", multiplier=0.0, part="query", depth_exponent=-0.25,
                     members=("0.weight",))
    scheme = InitScheme({"qkv": rule}, parameters={"0.weight": (12, 4)}, depth=6)
    assert InitScheme.from_json(scheme.to_json()) == scheme
    assert GroupRule.from_dict(rule.to_dict(members=False)) == replace(rule, members=())


@pytest.mark.parametrize(("edit", "message"), [
    (lambda g: g.update(part="keys"), r"part must be one of \['all', 'query'\], got 'keys'"),
    (lambda g: g.update(multiplier=-1), r"multiplier must be a finite number in \[0, "),
    (lambda g: g.update(depth_exponent=9), r"depth_exponent must be in \[-4, 4\], got 9"),
    (lambda g: g.pop("depth_exponent"), r"depth_exponent is missing"),
])
def test_malformed_version_2_rules(edit, message):
    d = copy.deepcopy(VALID_DICT)
    edit(d["groups"]["hidden.linear"])
    with pytest.raises(SchemeError, match=message):
        load_dict(d)


def test_a_depth_exponent_needs_a_depth():
    d = copy.deepcopy(VALID_DICT)
    d["groups"]["hidden.linear"]["depth_exponent"] = -0.5
    with pytest.raises(SchemeError, match=r"depth_exponent is -0\.5 but scheme\.depth is 0"):
        load_dict(d)
    d["depth"] = 4
    assert load_dict(d).groups["hidden.linear"].depth_exponent == -0.5
