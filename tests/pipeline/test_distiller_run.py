"""A Distiller schedule (filter pruners, a thinning extension, an ExponentialLR) run by the
pipeline: the thinning cuts the model, the LR follows the schedule across the optimizer rebuild,
and a run killed after the thinning resumes to the same weights."""

from __future__ import annotations

import pytest
import torch

import prunekit
from prunekit.pipeline import Phase, TrainOptions, run
from prunekit.recipes import load_recipe

from ..compat.distiller.test_recipe import FILTERS  # modelled on Distiller's resnet56 filter-rank example

OPTIONS = TrainOptions(epochs=4, max_batches=1, eval_batches=1, lr=0.1)


def _phases() -> list[Phase]:
    return [Phase("prune", OPTIONS, load_recipe(FILTERS))]


def test_distiller_schedule_thins_and_resumes(source, loaders, tmp_path):  # type: ignore[no-untyped-def]
    train, test = loaders
    kw = dict(train_loader=train, val_loader=test, progress=False, save=False, report=False)
    ref = run(source, _phases(), out_dir=tmp_path / "a", **kw)
    full = prunekit.count_params(source.build())
    assert all(r["params"] < full for r in ref.history)  # thinned at epoch 0
    lrs = [r["lr"] for r in ref.history]
    # ExponentialLR(0.95) stepped at the end of epochs 1..4; the optimizer was rebuilt at the cut
    assert lrs == pytest.approx([0.1, 0.1, 0.095, 0.09025])

    def kill(state):  # type: ignore[no-untyped-def]
        if len(state["history"]) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(source, _phases(), out_dir=tmp_path / "b", on_epoch_end=kill, **kw)
    got = run(source, _phases(), out_dir=tmp_path / "b", resume=True, **kw)
    assert [r["lr"] for r in got.history] == lrs
    for name, value in ref.model.state_dict().items():
        assert torch.equal(value, got.model.state_dict()[name]), name
