"""The Lightning callback: a search at fit start, in the MLFlowLogger's run, pretrained parts kept."""

from __future__ import annotations

import pytest
import torch
from mlflow import MlflowClient
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autoinit.errors import ConfigError
from autoinit.integrations.testing import mlflow_globals_kept, sqlite_store

L = pytest.importorskip("lightning")
lit = pytest.importorskip("autoinit.integrations.lightning")


@pytest.fixture(autouse=True)
def _mlflow_globals(tmp_path, monkeypatch):
    # the trainer's own MLflow logger makes its experiment with MLflow's default artifact root,
    # ./mlruns in the working folder: that folder is the test's, not the repository
    monkeypatch.chdir(tmp_path)
    with mlflow_globals_kept():
        yield


class Classifier(L.LightningModule):
    """A pretrained-looking body and a new head; ``training_step`` logs and returns the loss."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU())
        self.head = nn.Linear(32, 2)

    def forward(self, x):
        return self.head(self.body(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), 1e-3)


def loaders():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 8, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return (DataLoader(TensorDataset(x[:384], y[:384]), batch_size=32),
            DataLoader(TensorDataset(x[384:], y[384:]), batch_size=64))


def fit(module, callback, logger=False):
    trainer = L.Trainer(max_epochs=1, max_steps=2, callbacks=[callback], logger=logger,
                        log_every_n_steps=1,
                        enable_progress_bar=False, enable_checkpointing=False,
                        enable_model_summary=False, accelerator="cpu")
    trainer.fit(module, *loaders())


def test_callback_searches_at_fit_start_in_the_loggers_mlflow_run(tmp_path):
    from lightning.pytorch.loggers import MLFlowLogger

    uri = sqlite_store(tmp_path / "mlflow.db")
    logger = MLFlowLogger(experiment_name="lightning", tracking_uri=uri)
    callback = lit.AutoinitCallback(n_trials=8, probe_steps=6)
    torch.manual_seed(0)
    fit(Classifier(), callback, logger)
    result = callback.result
    assert result is not None and len(result.baselines) >= 6
    client = MlflowClient(uri)
    search_run = client.get_run(result.extra["mlflow_run_id"])
    assert search_run.data.tags["mlflow.parentRunId"] == logger.run_id
    assert search_run.info.experiment_id == logger.experiment_id
    assert "train_loss" in client.get_run(logger.run_id).data.metrics
    children = client.search_runs([search_run.info.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{search_run.info.run_id}'")
    assert len(children) >= 8


def test_only_the_named_and_unfrozen_parameters_are_initialized():
    torch.manual_seed(0)
    module = Classifier()
    module.body[2].requires_grad_(False)  # frozen: left alone even though `only` matches it
    before = {k: v.clone() for k, v in module.state_dict().items()}
    callback = lit.AutoinitCallback(n_trials=8, probe_steps=4, only=[r"^head\.", r"^body\.2\."],
                                    mlflow=False)
    trainer = L.Trainer(max_steps=0, callbacks=[callback], logger=False, enable_progress_bar=False,
                        enable_checkpointing=False, enable_model_summary=False,
                        accelerator="cpu")
    trainer.fit(module, *loaders())
    members = {m for rule in callback.result.scheme.groups.values() for m in rule.members}
    assert members == {"head.weight", "head.bias"}
    after = module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("head."))
    assert not torch.equal(before["head.weight"], after["head.weight"])


def test_training_step_loss_reads_a_dict_and_ignores_self_log():
    module = Classifier()
    batch = next(iter(loaders()[0]))
    assert lit.training_step_loss(module, batch).dim() == 0


def test_a_module_around_a_hugging_face_model_has_its_init_as_model_default():
    T = pytest.importorskip("transformers")
    from autoinit.plan import ModelPlan

    class LM(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = T.GPT2LMHeadModel(T.GPT2Config(n_layer=1, n_embd=32, n_head=2,
                                                        vocab_size=64))

    plan = ModelPlan.of(LM())
    assert plan.model_init
    assert "model_default" in {rule.family for rule in plan.uniform("model_default").groups.values()}


class TwoOptimizers(Classifier):
    """Manual optimization: ``training_step`` steps the body's and the head's optimizers."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
        for opt in self.optimizers():
            opt.zero_grad()
        self.manual_backward(loss)
        for opt in self.optimizers():
            opt.step()
        return loss

    def configure_optimizers(self):
        return [torch.optim.Adam(self.body.parameters()), torch.optim.Adam(self.head.parameters())]


def test_a_module_stepping_its_own_optimizers_needs_a_loss_and_says_so():
    with pytest.raises(ConfigError, match=r"^TwoOptimizers steps its own optimizers "
                                          r"\(automatic_optimization=False\).*pass loss_fn="):
        fit(TwoOptimizers(), lit.AutoinitCallback(n_trials=6, probe_steps=2, mlflow=False))

    def loss(module, batch):
        return nn.functional.cross_entropy(module(batch[0]), batch[1])

    callback = lit.AutoinitCallback(n_trials=6, probe_steps=2, mlflow=False, loss_fn=loss)
    fit(TwoOptimizers(), callback)
    assert callback.result.baselines


def test_fit_on_a_module_stepping_its_own_optimizers_says_so_in_one_line():
    import autoinit

    with pytest.raises(ConfigError, match=r"^TwoOptimizers steps its own optimizers "
                                          r"\(automatic_optimization=False\).*pass loss_fn="):
        autoinit.fit(TwoOptimizers(), loaders()[0], n_trials=6, probe_steps=2, threads=1,
                     mlflow=False)


def test_a_train_step_alone_still_needs_a_score_for_a_module_stepping_its_own_optimizers():
    import autoinit

    def step(model, batch, optimizer):  # trains; the held-out loss is still the module's
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(batch[0]), batch[1])
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    with pytest.raises(ConfigError, match=r"train_step= with score="):
        autoinit.fit(TwoOptimizers(), loaders()[0], n_trials=6, probe_steps=2, threads=1,
                     mlflow=False, train_step=step)
    with pytest.raises(ConfigError, match=r"train_step= with score=, to AutoinitCallback"):
        fit(TwoOptimizers(), lit.AutoinitCallback(n_trials=6, probe_steps=2, mlflow=False,
                                                  train_step=step))


def test_a_module_stepping_its_own_optimizers_searches_with_a_train_step_and_a_score():
    def step(model, batch, optimizer):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(batch[0]), batch[1])
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    def score(model, val):
        with torch.no_grad():
            return sum(nn.functional.cross_entropy(model(x), y).item() for x, y in val) / len(val)

    callback = lit.AutoinitCallback(n_trials=6, probe_steps=2, mlflow=False, train_step=step,
                                    score=score)
    fit(TwoOptimizers(), callback)
    assert callback.result.baselines
