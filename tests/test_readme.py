"""The README stays true: its main command and its Python snippet run (with small budgets)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_quick_start_search_command_runs(tmp_path):
    first = _blocks("bash")[0]
    command = first.split("&&")[-1].strip()
    assert command == "autoinit search studies/deep_relu_mlp.toml"
    args = shlex.split(command)[1:] + [
        "--n-trials", "7", "--probe-steps", "4", "--storage", f"sqlite:///{tmp_path / 's.db'}",
        "--out", str(tmp_path / "scheme.json"), "--no-mlflow"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "autoinit", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "pytorch_default" in run.stdout and "<- chosen" in run.stdout
    shown = subprocess.run([sys.executable, "-m", "autoinit", "show", str(tmp_path / "scheme.json")],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "family" in shown.stdout


def test_test_command_matches_ci():
    test_line = next(b for b in _blocks("bash") if "pytest" in b).strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_line.endswith("python -m pytest")
    assert "python -m pytest" in ci and '"torch==2.13.0"' in ci and '-e ".[test]"' in ci
    assert test_line.startswith('pip install "torch==2.13.0" && pip install -e ".[test]"')


def test_python_snippet_runs(tmp_path, monkeypatch, tiny_loader):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    snippet = _blocks("python")[0].replace("autoinit.fit(model, train_loader)",
                                           "autoinit.fit(model, train_loader, n_trials=7, probe_steps=4)")
    namespace = {"model": model, "train_loader": tiny_loader}
    exec(compile(snippet, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert (tmp_path / "scheme.json").exists()


def test_custom_loop_snippet_runs(tiny_loader):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    call = "autoinit.fit(model, train_loader, train_step=train_step, make_state=make_state)"
    snippet = _blocks("python")[1]
    assert call in snippet
    snippet = snippet.replace(call, call[:-1] + ", n_trials=7, probe_steps=4, mlflow=False)")
    namespace = {"model": model, "train_loader": tiny_loader, "torch": torch}
    exec(compile("import autoinit\n" + snippet, "README.md", "exec"), namespace)  # noqa: S102
    result = namespace["result"]
    assert all(t.user_attrs["train_loss"] for t in result.study.trials if t.values)


def test_public_api_is_what_the_readme_shows():
    import autoinit

    shown = set(re.findall(r"`autoinit\.(\w+)", README))
    public = set(autoinit.__all__)
    assert public <= shown, sorted(public - shown)
    submodules = {p.stem for p in (ROOT / "autoinit").iterdir() if not p.name.startswith("_")}
    assert shown - submodules - {"__all__"} <= public, sorted(shown - submodules - public)
    assert all(hasattr(autoinit, name) for name in public)


def test_every_flag_the_docs_show_is_a_real_option():
    from autoinit.cli import cli

    rows = re.findall(r"^\| `autoinit (\w+) ([^`]*)`", README, flags=re.M)
    cli_md = (ROOT / "docs" / "cli.md").read_text()
    rows += [("search", flag) for flag in re.findall(r"^\| `(--[\w-]+)", cli_md, flags=re.M)]
    rows += re.findall(r"^### `autoinit (\w+) ([^`]*)`", cli_md, flags=re.M)
    assert {command for command, _ in rows} == set(cli.commands)
    for command, usage in rows:
        options = {o for p in cli.commands[command].params for o in getattr(p, "opts", [])}
        shown = set(re.findall(r"--[\w-]+", usage))
        assert shown <= options, (command, sorted(shown - options))
