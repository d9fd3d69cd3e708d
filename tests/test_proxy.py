"""fit(..., proxy=...): the search runs on the proxy and its scheme is transferred to the model;
the study file's [proxy] section and the CLI line that says so."""

from __future__ import annotations

import copy
import dataclasses

import mlflow
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import autoinit
from autoinit import SchemeError, apply_scheme
from autoinit.cli import main
from autoinit.config import proxy_model, study_from_dict
from autoinit.errors import StudyFileError
from autoinit.proxy import search_on_proxy
from autoinit.search import Selection, run_search
from autoinit.tasks.mlp import residual_mlp


@pytest.fixture(autouse=True)
def _isolated_rng():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        yield


def loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(320, 8, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=32)


def test_fit_searches_the_proxy_and_initializes_the_model_with_the_transferred_scheme():
    model = residual_mlp(blocks=4, width=32, in_features=8, classes=2)
    proxy = residual_mlp(blocks=2, width=8, in_features=8, classes=2)
    result = autoinit.fit(model, loader(), proxy=proxy, n_trials=8, probe_steps=8, seed=5,
                          mlflow=False, progress=False)
    report = result.proxy
    assert report is not None and report.transfer is not None
    assert {g.group for g in report.transfer.groups} == {
        "input.linear", "hidden.linear", "residual_out.linear", "head.linear"}
    assert (report.proxy_parameters, report.model_parameters) == (
        sum(p.numel() for p in proxy.parameters()), sum(p.numel() for p in model.parameters()))
    # the scheme is the model's (its parameters, its depth) and the model holds it
    assert dict(result.scheme.parameters) == {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert result.scheme.depth == 4 and "transferred from ResidualMLP" in result.scheme.origin
    again = apply_scheme(copy.deepcopy(model), result.scheme)
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)
    # the cost unit is the model's step: the proxy's clock times the measured step ratio
    assert result.cost.tse == pytest.approx(result.cost.wall_seconds / result.cost.step_seconds)
    assert report.step_ratio == pytest.approx(report.model_step_seconds / report.proxy_step_seconds)
    assert "searched on a proxy (" in result.summary() and report.describe() in result.summary()


def test_parameters_no_group_matches_are_warned_of_once():
    """The model's plan, the proxy's two plans and the transfer's each said it: four warnings."""
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    proxy = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with pytest.warns(UserWarning) as said:
        autoinit.fit(model, loader(), proxy=proxy, groups={"first": r"^0\."}, n_trials=8,
                     probe_steps=8, seed=5, mlflow=False, progress=False)
    unmatched = [str(w.message) for w in said if "match no group" in str(w.message)]
    assert unmatched == ["2 parameters match no group and keep their values: 2.weight, 2.bias"]


def test_a_proxy_whose_groups_differ_is_refused_before_any_search():
    model = residual_mlp(blocks=2, width=16, in_features=8, classes=2)
    plain = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    with pytest.raises(SchemeError, match=r"^groups \['hidden.linear', 'residual_out.linear'\] "
                                          r"of ResidualMLP have no counterpart in the proxy"):
        autoinit.fit(model, loader(), proxy=plain, n_trials=8, mlflow=False, progress=False)
    with pytest.raises(SchemeError, match="groups='layer'"):
        autoinit.fit(model, loader(), proxy=residual_mlp(1, 8, 8, 2), groups="layer", n_trials=8,
                     mlflow=False, progress=False)
    with pytest.raises(autoinit.ConfigError, match="proxy must be a smaller torch.nn.Module"):
        autoinit.fit(model, loader(), proxy=model, n_trials=8, mlflow=False, progress=False)


STUDY = {"model": {"factory": "autoinit.tasks.mlp:residual_mlp",
                   "kwargs": {"blocks": 4, "width": 32, "in_features": 64}},
         "data": {"factory": "autoinit.tasks.digits:digits_data"}}


def test_study_file_proxy_section_overrides_the_model_kwargs():
    cfg = study_from_dict({**STUDY, "proxy": {"width": 8, "blocks": 2}})
    assert cfg.proxy == {"width": 8, "blocks": 2}
    proxy = proxy_model(cfg)
    assert (len(proxy.blocks), proxy.input.out_features) == (2, 8)
    assert proxy_model(study_from_dict(STUDY)) is None
    assert cfg.study_name != study_from_dict(STUDY).study_name  # another search, another study


@pytest.mark.parametrize(("proxy", "message"), [
    ({"widht": 8}, "proxy.widht is not a key of model.kwargs (did you mean 'proxy.width'? "
                   "[proxy] overrides [model] kwargs: ['blocks', 'in_features', 'width']); "
                   "got widht = 8"),
    ({"width": "narrow"}, "proxy.width must be of type int like model.kwargs.width (32), got 'narrow'"),
    ({"width": 64}, "proxy.width must be a positive integer no larger than model.kwargs.width "
                    "(32), got 64"),
    ({"blocks": 0}, "proxy.blocks must be a positive integer no larger than model.kwargs.blocks "
                    "(4), got 0"),
    ({"width": [8]}, "proxy.width must be a number, a string or true/false (a [model] kwargs "
                     "value), got [8]"),
])
def test_study_file_proxy_errors_name_the_key_and_the_value(proxy, message):
    with pytest.raises(StudyFileError) as err:
        study_from_dict({**STUDY, "proxy": proxy})
    assert str(err.value) == message


def test_cli_search_runs_on_the_proxy_and_says_so(tmp_path, capsys):
    study = tmp_path / "proxy.toml"
    study.write_text(f"""
[model]
factory = "autoinit.tasks.mlp:residual_mlp"
kwargs = {{ blocks = 4, width = 32 }}

[data]
factory = "autoinit.tasks.digits:digits_data"
kwargs = {{ batch_size = 32 }}

[search]
n_trials = 7
probe_steps = 6
storage = "sqlite:///{tmp_path}/study.db"

[mlflow]
enabled = false

[proxy]
blocks = 2
width = 8
""")
    code = main(["search", str(study), "--out", str(tmp_path / "scheme.json")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "searching on the proxy ([proxy] blocks = 2, width = 8: " in out
    assert "searched on a proxy (" in out and "transferred 4 groups by role (depth 2 -> 4)" in out
    scheme = autoinit.load_scheme(tmp_path / "scheme.json")
    apply_scheme(residual_mlp(blocks=4, width=32), scheme)  # the model's scheme, not the proxy's


def choosing_lsuv(keep_others: bool):
    """The real search, its choice overridden by LSUV (with or without the round's others)."""
    def search(proxy, data, **options):
        result = run_search(proxy, data, **options)
        lsuv = [c for c in result.candidates if c.name == "lsuv"]
        return dataclasses.replace(result, chosen="lsuv",
                                   candidates=result.candidates if keep_others else lsuv)
    return search


@pytest.mark.parametrize("round_seeds", [0, 2])
def test_lsuv_chosen_on_the_proxy_gives_way_to_the_best_transferable_candidate(round_seeds):
    model = residual_mlp(blocks=3, width=16, in_features=8, classes=2)
    result = search_on_proxy(model, residual_mlp(1, 8, 8, 2), loader(), search=choosing_lsuv(True),
                             n_trials=8, probe_steps=8, progress=False,
                             selection=Selection(seeds=round_seeds))
    others = [c for c in result.candidates if c.name != "lsuv"]
    best = min(others, key=lambda c: c.mean)
    assert result.chosen == best.name and result.score == best.mean
    assert result.selection_ran == bool(round_seeds)
    scored = "the selection round" if round_seeds else "the probes"
    assert f"cannot transfer by group, so {best.name}, the best other candidate of {scored}" \
        in result.reason
    assert result.proxy.transfer is not None and result.scheme.depth == 3


def test_lsuv_alone_in_the_round_is_calibrated_afresh_on_the_model():
    model = residual_mlp(blocks=3, width=16, in_features=8, classes=2)
    result = search_on_proxy(model, residual_mlp(1, 8, 8, 2), loader(), search=choosing_lsuv(False),
                             n_trials=8, probe_steps=8, progress=False)
    assert result.proxy.transfer is None
    assert "the lsuv baseline calibrated afresh on the model" in result.proxy.describe()
    # one group per layer of the model (3 blocks of 2, input, head), scales calibrated on it
    assert len(result.scheme.groups) == 8 and result.scheme.model_class == "ResidualMLP"
    assert len({rule.scale for rule in result.scheme.groups.values()}) > 1
    again = apply_scheme(copy.deepcopy(model), result.scheme)
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)


def test_the_mlflow_run_of_a_proxy_search_holds_the_models_scheme(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    model = residual_mlp(blocks=3, width=16, in_features=8, classes=2)
    result = autoinit.fit(model, loader(), proxy=residual_mlp(1, 8, 8, 2), n_trials=8,
                          probe_steps=8, tracking_uri=uri, progress=False)
    run = result.run.run_id
    assert autoinit.load_scheme(run, tracking_uri=uri) == result.scheme
    assert autoinit.load_scheme(f"runs:/{run}/autoinit/proxy_scheme.json",
                                tracking_uri=uri) == result.proxy.proxy_scheme
    tag = mlflow.MlflowClient(uri).get_run(run).data.tags["autoinit.proxy"]
    assert tag == result.proxy.describe()
