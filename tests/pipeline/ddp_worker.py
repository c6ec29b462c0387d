"""Run by ``torchrun --nproc_per_node=2`` in test_distributed.py: prune + fine-tune with DDP (gloo).

Each rank saves its final weights and how many decisions it replayed to ``OUT/rank<r>.pt``.
"""

from __future__ import annotations

import os
import sys

import torch

from prunekit.data import make_loaders
from prunekit.pipeline import ModelSource, Phase, TrainOptions, run
from tests.pipeline.toy_recipe import ToyRecipe


def main(out: str) -> None:
    torch.set_num_threads(1)
    train, test = make_loaders(batch_size=8, seed=0)
    recipe = ToyRecipe()
    fast = dict(max_batches=2, eval_batches=1)
    phases = [
        Phase("prune", TrainOptions(epochs=3, lr=0.02, **fast), recipe),
        Phase("finetune", TrainOptions(epochs=1, lr=0.01, distill=True, **fast)),
    ]
    source = ModelSource("resnet20", num_classes=10, in_channels=1)
    result = run(source, phases, train_loader=train, val_loader=test, out_dir=os.path.join(out, "run"), progress=False)
    rank = int(os.environ["RANK"])
    torch.save(
        {"state": result.model.state_dict(), "replayed": recipe.replayed, "history": result.history},
        os.path.join(out, f"rank{rank}.pt"),
    )


if __name__ == "__main__":
    main(sys.argv[1])
