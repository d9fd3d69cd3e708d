"""Offline benchmark tasks: model and data factories that never download anything.

Every data factory returns ``(train_loader, val_loader)``, or ``(train_loader, test_loader)``
with ``split="test"``; the training loader shuffles with its own seeded ``torch.Generator``
and held-out sets come as one batch. ``studies/<name>.toml`` holds a study file for each task.

Example:
    >>> list_tasks("deep_*")
    ['deep_relu_mlp', 'deep_tanh_mlp']
    >>> net = get_task("deep_relu_mlp").build_model(depth=3, width=8)
    >>> len(net)
    5
"""

from autoinit.tasks._registry import Task, get_task, list_tasks, register_task
from autoinit.tasks.gan import GAN_GROUPS

__all__ = ["Task", "get_task", "list_tasks", "register_task"]

_DIGITS = "autoinit.tasks.digits:digits_data"

for _task in (
    Task("deep_relu_mlp", "autoinit.tasks.mlp:deep_relu_mlp", _DIGITS,
         {"depth": 32, "width": 128}, {"batch_size": 64},
         "32-layer plain ReLU MLP, no normalization, on the digits"),
    Task("deep_tanh_mlp", "autoinit.tasks.mlp:deep_tanh_mlp", _DIGITS,
         {"depth": 32, "width": 128}, {"batch_size": 64},
         "32-layer plain tanh MLP, no normalization, on the digits"),
    Task("residual_mlp", "autoinit.tasks.mlp:residual_mlp", _DIGITS,
         {"blocks": 16, "width": 128}, {"batch_size": 64},
         "residual MLP of 16 ReLU blocks, no normalization, on the digits"),
    Task("vgg_cnn", "autoinit.tasks.cnn:vgg_cnn", _DIGITS,
         {"convs_per_stage": 5, "channels": 32}, {"batch_size": 64, "image": True},
         "10-conv VGG-style CNN without BatchNorm on the digits as 1x8x8 images"),
    Task("post_ln_transformer", "autoinit.tasks.text:post_ln_transformer",
         "autoinit.tasks.text:char_data",
         {"n_layers": 12, "d_model": 64, "n_heads": 4, "ff": 128, "max_len": 32},
         {"seq_len": 32, "batch_size": 16},
         "12-layer post-LN Transformer, no warmup, next character of a generated grammar"),
    Task("rnn_adding", "autoinit.tasks.adding:adding_rnn", "autoinit.tasks.adding:adding_data",
         {"hidden": 64}, {"seq_len": 30, "batch_size": 64},
         "tanh RNN on the adding problem, T=30"),
    Task("lstm_adding", "autoinit.tasks.adding:adding_lstm", "autoinit.tasks.adding:adding_data",
         {"hidden": 64}, {"seq_len": 30, "batch_size": 64},
         "LSTM on the adding problem, T=30"),
    Task("dcgan_digits", "autoinit.tasks.gan:dcgan", "autoinit.tasks.gan:gan_data",
         {"z_dim": 16, "channels": 32}, {"batch_size": 64},
         "small DCGAN on the 8x8 digits, its own two-optimizer loop, scored by a Frechet distance",
         {"train_step": "autoinit.tasks.gan:gan_train_step", "score": "autoinit.tasks.gan:gan_score",
          "make_state": "autoinit.tasks.gan:gan_state", "loss_fn": "autoinit.tasks.gan:gan_loss",
          "groups": GAN_GROUPS},
         "autoinit.tasks.gan:gan_report"),
    Task("resnet_nonorm", "autoinit.tasks.resnet:resnet_nonorm", _DIGITS,
         {"blocks": 20, "channels": 16}, {"batch_size": 64, "image": True},
         "residual CNN of 20 blocks without normalization (Fixup's setting) on the digits as images"),
    Task("post_ln_transformer_24", "autoinit.tasks.text:post_ln_transformer",
         "autoinit.tasks.text:char_data",
         {"n_layers": 24, "d_model": 32, "n_heads": 4, "ff": 64, "max_len": 32},
         {"seq_len": 32, "batch_size": 16},
         "24-layer post-LN Transformer, no warmup, next character of a generated grammar"),
    Task("lstm_memory", "autoinit.tasks.memory:memory_lstm", "autoinit.tasks.memory:memory_data",
         {"hidden": 64, "classes": 4, "distractors": 8},
         {"seq_len": 100, "classes": 4, "distractors": 8, "batch_size": 64},
         "LSTM recalling the first of T=100 symbols"),
    Task("tiny_gpt", "autoinit.tasks.gpt:tiny_gpt", "autoinit.tasks.text:char_data",
         {"n_layers": 4, "d_model": 64, "n_heads": 4, "max_len": 32},
         {"seq_len": 32, "batch_size": 16},
         "4-layer pre-LN GPT with tied embeddings and GPT-2's own init, generated grammar"),
    Task("tiny_vit", "autoinit.tasks.vit:tiny_vit", _DIGITS,
         {"n_layers": 6, "d_model": 64, "n_heads": 4, "ff": 128, "patch": 2},
         {"batch_size": 64, "image": True},
         "6-layer post-LN ViT (2x2 patches, class token), no warmup, on the digits"),
    # held out (session 9): never used to design or tune the search (docs/benchmarks_holdout.md)
    Task("gru_pixel_digits", "autoinit.tasks.pixel:gru_digits", _DIGITS,
         {"hidden": 64}, {"batch_size": 64},
         "held out: GRU reading the digits one pixel at a time (64 steps)"),
    Task("silu_autoencoder", "autoinit.tasks.holdout:silu_autoencoder",
         "autoinit.tasks.holdout:reconstruction_data",
         {"depth": 6, "width": 128, "code": 8}, {"batch_size": 64},
         "held out: 12-layer SiLU MLP autoencoder of the digits, mean squared error"),
    Task("conv1d_signals", "autoinit.tasks.holdout:conv1d_net", "autoinit.tasks.holdout:signal_data",
         {"convs": 11, "channels": 32}, {"length": 64, "batch_size": 64},
         "held out: 11-conv 1-D GELU CNN without normalization, noisy frequency bands"),
    # session 11: the IRNN paper's setting (Le, Jaitly & Hinton 2015), the irnn preset's task
    Task("relu_rnn_pixel_digits", "autoinit.tasks.pixel:relu_rnn_digits", _DIGITS,
         {"hidden": 64}, {"batch_size": 64},
         "ReLU RNN reading the digits one pixel at a time (64 steps), the IRNN paper's setting"),
):
    register_task(_task)
del _task
