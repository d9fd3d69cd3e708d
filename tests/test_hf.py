"""autoinit on Hugging Face models: fit with model_default, the Trainer callback, checkpoints."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mlflow import MlflowClient
from torch.utils.data import Dataset

import autoinit
from autoinit.integrations.testing import mlflow_globals_kept, sqlite_store
from autoinit.plan import ModelPlan
from autoinit.tasks.text import ALPHABET, char_data

T = pytest.importorskip("transformers")
hf = pytest.importorskip("autoinit.integrations.hf")


@pytest.fixture(autouse=True)
def _mlflow_globals(tmp_path, monkeypatch):
    # the trainer's own MLflow logger makes its experiment with MLflow's default artifact root,
    # ./mlruns in the working folder: that folder is the test's, not the repository
    monkeypatch.chdir(tmp_path)
    with mlflow_globals_kept():
        yield


def tiny_gpt2(vocab: int = len(ALPHABET)):
    return T.GPT2LMHeadModel(T.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=vocab,
                                          n_positions=32, bos_token_id=0, eos_token_id=0))


def lm_loss(model, batch):
    x, y = batch
    logits = model(input_ids=x).logits
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def train(model, loader, steps: int = 60) -> float:
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    batches = iter(loader)
    for _ in range(steps):
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        opt.zero_grad()
        lm_loss(model, batch).backward()
        opt.step()
    return float(lm_loss(model, batch).detach())


def test_fit_on_gpt2_lists_model_default_and_is_not_worse_than_gpt2s_own_init():
    train_loader, val_loader = char_data(seq_len=16, batch_size=16, n_train=512, n_eval=64)
    model = tiny_gpt2()
    result = autoinit.fit(model, train_loader, val_dataloader=val_loader, loss_fn=lm_loss,
                          n_trials=9, probe_steps=12, lr=3e-3, mlflow=False, seed=0)
    assert "model_default" in result.baselines
    own = autoinit.apply_scheme(tiny_gpt2(), ModelPlan.of(model).uniform("model_default"))
    chosen = autoinit.apply_scheme(tiny_gpt2(), result.scheme)
    assert chosen.lm_head.weight is chosen.transformer.wte.weight
    torch.manual_seed(0)
    chosen_loss = train(chosen, char_data(seq_len=16, batch_size=16, n_train=512, n_eval=64)[0])
    torch.manual_seed(0)
    own_loss = train(own, char_data(seq_len=16, batch_size=16, n_train=512, n_eval=64)[0])
    assert chosen_loss <= own_loss * 1.02, (result.chosen, chosen_loss, own_loss)


class Tokens(Dataset):
    """Random token sequences; the model learns their unigram statistics."""

    def __init__(self, n: int = 256, vocab: int = 64):
        self.ids = torch.randint(0, vocab, (n, 16), generator=torch.Generator().manual_seed(0))

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def trainer(model, callback, tmp_path, report_to):
    args = T.TrainingArguments(output_dir=str(tmp_path / "out"), report_to=report_to, use_cpu=True,
                               max_steps=2, per_device_train_batch_size=16, save_strategy="no",
                               disable_tqdm=True, seed=0, logging_steps=1)
    return T.Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=[callback])


def test_trainer_callback_searches_at_train_begin_inside_the_trainers_mlflow_run(tmp_path,
                                                                                    monkeypatch):
    uri = sqlite_store(tmp_path / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "hf-trainer")
    callback = hf.AutoinitTrainerCallback(n_trials=8, probe_steps=6)
    trainer(tiny_gpt2(64), callback, tmp_path, ["mlflow"]).train()
    result = callback.result
    assert result is not None and "model_default" in result.baselines
    client = MlflowClient(uri)
    search_run = client.get_run(result.extra["mlflow_run_id"])
    trainer_run = client.get_run(search_run.data.tags["mlflow.parentRunId"])
    assert trainer_run.info.run_id != search_run.info.run_id
    assert "train_loss" in trainer_run.data.metrics  # the trainer logged into its own run
    children = client.search_runs([search_run.info.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{search_run.info.run_id}'")
    assert len(children) >= 8


def test_a_checkpoints_weights_are_kept_and_only_the_new_head_is_searched(tmp_path):
    tiny_gpt2(64).save_pretrained(tmp_path / "ckpt")
    model = T.GPT2ForSequenceClassification.from_pretrained(tmp_path / "ckpt", num_labels=3,
                                                            pad_token_id=0)
    assert hf.new_parameters(model) == ["score.weight"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 64, (128, 8), generator=g)
    data = [{"input_ids": x[i:i + 16], "labels": (x[i:i + 16, 0] % 3)} for i in range(0, 128, 16)]
    callback = hf.AutoinitTrainerCallback(n_trials=8, probe_steps=4, mlflow=False)
    callback.on_train_begin(T.TrainingArguments(output_dir=str(tmp_path / "o"), report_to=[]),
                            None, None, model=model, train_dataloader=data)
    members = {m for rule in callback.result.scheme.groups.values() for m in rule.members}
    assert members == {"score.weight"}
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k != "score.weight")
    assert not torch.equal(before["score.weight"], after["score.weight"])
