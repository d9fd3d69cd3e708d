"""A search worker for the distributed tests: ``python distributed_worker.py URL STUDY N STEPS``.

One torch thread unless ``WORKER_THREADS`` says otherwise; MLflow tracking to
``WORKER_TRACKING_URI`` when it is set.

Every worker builds the same model and data (seeded) and joins the study at URL.
"""

from __future__ import annotations

import json
import os
import sys

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import autoinit
from autoinit.search import run_search


def main() -> None:
    url, study, n_trials, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(int(os.environ.get("WORKER_THREADS", "1")))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 32, generator=g)
    y = (x[:, :4].sum(1) > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(*[m for _ in range(6) for m in (nn.LazyLinear(128), nn.ReLU())],
                              nn.LazyLinear(2))
        model(x[:2])
    options = {"storage": url, "study_name": study, "n_trials": n_trials, "probe_steps": steps}
    tracking = os.environ.get("WORKER_TRACKING_URI")
    if tracking:  # through the facade, with MLflow tracking
        result = autoinit.fit(model, loader, tracking_uri=tracking, experiment="distributed",
                              **options)
    else:
        result = run_search(model, loader, **options)
    print(json.dumps({"chosen": result.chosen, "score": result.score,
                      "candidates": [c.trial_number for c in result.candidates]}))


if __name__ == "__main__":
    main()
