"""The training pipeline: train -> prune -> fine-tune, with checkpoints, resume, distillation
and torchrun.

>>> from prunekit.pipeline import Phase, TrainOptions, ModelSource, run
>>> result = run(ModelSource("resnet20", in_channels=1), [Phase("train", TrainOptions(epochs=5))],
...              train_loader=train, val_loader=test, out_dir="runs/r20")
"""

from prunekit.pipeline.checkpoint import load_checkpoint, save_checkpoint
from prunekit.pipeline.distill import DistillationLoss, kd_loss
from prunekit.pipeline.distributed import DistContext, init_distributed
from prunekit.pipeline.history import HISTORY_COLUMNS, read_history, write_history
from prunekit.pipeline.optim import StepLR, build_optimizer, lr_factor
from prunekit.pipeline.options import TrainOptions
from prunekit.pipeline.run import PHASES, Phase, RunResult, run
from prunekit.pipeline.source import ModelSource
from prunekit.pipeline.sparsify import RegularizedLoss
from prunekit.pipeline.train import EpochStats, EvalResult, evaluate, train_epoch

__all__ = [
    "run",
    "Phase",
    "PHASES",
    "RunResult",
    "TrainOptions",
    "ModelSource",
    "RegularizedLoss",
    "evaluate",
    "train_epoch",
    "EvalResult",
    "EpochStats",
    "kd_loss",
    "DistillationLoss",
    "build_optimizer",
    "lr_factor",
    "StepLR",
    "save_checkpoint",
    "load_checkpoint",
    "HISTORY_COLUMNS",
    "write_history",
    "read_history",
    "DistContext",
    "init_distributed",
]
