"""Shared fixtures: small seeded data sets and models, independent of the global RNG; for the
whole session (the package's doctests included, they run last): one torch thread, and nothing
written into the repository tree."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis.configuration import set_hypothesis_home_dir
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
# Hypothesis caches data in .hypothesis/ of the working folder (the repository): a temporary one
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="autoinit-hypothesis-")
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)
set_hypothesis_home_dir(_HYPOTHESIS_HOME)
# Written by Python, pytest and ruff themselves, not by the code under test.
_NOISE = re.compile(r"(^|/)(__pycache__|\.pytest_cache|\.ruff_cache)(/|$)")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tests train tiny models: one thread is faster for them, and steady when the machine is busy
    (two threads beside other work ran 2-5x slower here). ``OMP_NUM_THREADS=1`` tells a search
    to keep that thread instead of measuring (tests of the measurement pass ``threads``)."""
    threads, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    torch.set_num_threads(threads)
    if env is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = env


def repo_tree() -> dict[str, int] | None:
    """Every changed, untracked or ignored path of the checkout (``git status --porcelain
    --ignored``), untracked and ignored ones with their modification time (an edit to a tracked
    file while the tests run is not theirs); ``None`` outside a git checkout."""
    try:
        run = subprocess.run(["git", "status", "--porcelain", "--ignored", "-z"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    if run.returncode != 0:
        return None
    tree = {}
    for entry in filter(None, run.stdout.split("\0")):
        path = entry[3:]
        if not _NOISE.search(path):
            full = ROOT / path
            new = entry[:2] in ("??", "!!") and full.exists()
            tree[entry] = full.stat().st_mtime_ns if new else 0
    return tree


@pytest.fixture(autouse=True)
def probes_one_at_a_time(request, monkeypatch):
    """Whether a search stacks its candidates into a population is measured on the machine (a
    timing), so outside tests/test_population.py a search in this process probes one candidate
    at a time unless the test asks for a population: results do not depend on the load, and no
    search pays the measurement."""
    if request.module.__name__.endswith("test_population"):
        return
    import autoinit.search

    measured = autoinit.search.choose_population

    def choose(model, data, config, requested, *args, **kwargs):
        return measured(model, data, config, 1 if requested is None else requested, *args,
                        **kwargs)

    monkeypatch.setattr(autoinit.search, "choose_population", choose)


@pytest.fixture(scope="session", autouse=True)
def repo_tree_unchanged():
    """No test writes into the repository: its git status (ignored files included) and the
    times of the paths it lists are the same after the session as before."""
    before = repo_tree()
    yield
    if before is None:
        return
    after = repo_tree()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"the tests wrote into the repository tree at {ROOT}: {changed}"


def digits_tensors(seed: int = 0):
    """scikit-learn's bundled digits, scaled to [0, 1], shuffled with a seeded generator."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return x[perm], y[perm]


@pytest.fixture(scope="session")
def digits():
    """``(train_loader, val_loader, test_tensors)`` on digits: 1,200 / 300 / 297 samples."""
    x, y = digits_tensors()
    train = DataLoader(TensorDataset(x[:1200], y[:1200]), batch_size=64, shuffle=True,
                       generator=torch.Generator().manual_seed(1))
    val = DataLoader(TensorDataset(x[1200:1500], y[1200:1500]), batch_size=150)
    return train, val, (x[1500:], y[1500:])


def deep_relu_mlp(depth: int = 20, width: int = 64, seed: int = 0) -> nn.Sequential:
    """A plain ReLU MLP without normalization; built under a local seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[nn.Module] = [nn.Linear(64, width), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Linear(width, width), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(width, 10))


def tiny_data() -> DataLoader:
    """A small two-class problem: 256 samples of 8 features, batches of 32."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=32)


@pytest.fixture
def tiny_loader() -> DataLoader:
    """:func:`tiny_data`, fresh for each test."""
    return tiny_data()


def tiny_mlp(seed: int = 0) -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                             nn.Linear(16, 2))


class SparseBag(nn.Module):
    """Token ids through a sparse embedding (``sparse=True``: Adam cannot step its gradients)."""

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.emb = nn.Embedding(10, 4, sparse=True)
            self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(x).mean(1))


@pytest.fixture
def token_loader():
    """64 sequences of 3 token ids in 0..9 with two classes, batches of 16."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, 10, (64, 3), generator=g), torch.randint(0, 2, (64,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=16)


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL 15 server on 127.0.0.1 (password auth) and a fresh database."""
    from autoinit.testing import PostgresUnavailable, temporary_postgres

    try:
        with temporary_postgres() as url:
            yield url
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
