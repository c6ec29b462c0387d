"""Distiller's ``FMReconstructionChannelPruner``: after a thinning, refit the layers that read the
removed channels towards the original model's feature maps (He et al. 2017), with
:func:`prunekit.reconstruction.reconstruct_`."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch.nn as nn

from prunekit.reconstruction import reconstruct_

__all__ = ["fm_reconstruction_hook"]

log = logging.getLogger(__name__)


def fm_reconstruction_hook(
    model: nn.Module, original: nn.Module, calibration: Iterable[Any] | None, kept: Mapping, layers: Sequence[str]
) -> list[str]:
    """Refits ``layers`` of the thinned ``model`` towards ``original``; returns log lines.

    Without calibration batches nothing can be refit: it warns that the weights were NOT
    reconstructed (the channel choice still follows the pruner's ranking).
    """
    if calibration is None:
        line = "FMReconstructionChannelPruner: no calibration batches were given, so the weights were NOT reconstructed"
        log.warning(line)
        return [line]
    rows = reconstruct_(model, original, calibration, kept=kept, layers=list(layers))
    return [
        f"FMReconstruction: refit {r.name} (relative error {r.error_before:.4f} -> {r.error_after:.4f})" for r in rows
    ]
