"""Least-squares refit of a consumer's weights (He et al. 2017, eq. (5); ThiNet's last step).

After the input channels are chosen, the kept weights are refit so the layer's output matches the
ORIGINAL model's output on the sampled points:

    W'* = argmin_W' || Y - A_kept W'^T - b' ||_F^2,

solved by ``torch.linalg.lstsq`` (SVD driver ``gelsd`` on CPU, which copes with rank-deficient
samples; QR on CUDA). ``b'`` is fitted only when the layer has a bias. Removed features and
removed output rows stay exactly zero, so the refit layer is still what the prune plan will cut.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from prunekit.reconstruction.sampling import bias_of, weight_matrix, weight_of

__all__ = ["least_squares", "relative_error", "refit_"]


def least_squares(
    inputs: torch.Tensor, target: torch.Tensor, *, bias: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(W, b)`` minimising ``||target - inputs W^T - b||``; ``W`` is (outputs, features)."""
    a = inputs.double()
    if bias:
        a = torch.cat([a, torch.ones(a.shape[0], 1, dtype=a.dtype, device=a.device)], dim=1)
    driver = "gelsd" if a.device.type == "cpu" else None
    sol = torch.linalg.lstsq(a, target.double(), driver=driver).solution  # (features[+1], outputs)
    if bias:
        return sol[:-1].T, sol[-1]
    return sol.T, None


def relative_error(
    inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, target: torch.Tensor
) -> float:
    """``||target - (inputs W^T + b)||^2 / ||target||^2``."""
    pred = inputs.double() @ weight.double().T
    if bias is not None:
        pred = pred + bias.double()
    t = target.double()
    return float((t - pred).pow(2).sum() / t.pow(2).sum().clamp_min(1e-30))


@torch.no_grad()
def refit_(
    module: nn.Module,
    inputs: torch.Tensor,
    target: torch.Tensor,
    *,
    features: torch.Tensor,
    outputs: torch.Tensor,
) -> tuple[float, float]:
    """Refits ``module``'s weights on ``features`` (kept input features) for ``outputs`` (live rows).

    Args:
        module: a Conv2d (groups=1) or Linear.
        inputs: sampled input rows ``A`` (points, all features).
        target: the original outputs at those points, (points, all outputs).
        features: indices of the features to use; the others' weights are set to 0.
        outputs: indices of the output rows to fit; the others are left as they are.

    Returns:
        The relative error on the samples before and after the refit.
    """
    w = weight_matrix(module)
    b = bias_of(module)
    a, y = inputs[:, features], target[:, outputs]
    w_old = w[outputs][:, features]
    b_old = b[outputs] if b is not None else None
    before = relative_error(a, w_old, b_old, y)
    w_new, b_new = least_squares(a, y, bias=b is not None)
    after = relative_error(a, w_new, b_new, y)
    if not after <= before:  # numerical trouble (too few samples): keep the old weights
        return before, before
    rows = w.detach().clone()
    block = torch.zeros(len(outputs), w.shape[1], dtype=w.dtype, device=w.device)
    block[:, features] = w_new.to(w.dtype)
    rows[outputs] = block
    weight_of(module).copy_(rows.reshape(weight_of(module).shape))
    if b is not None and b_new is not None:
        b[outputs] = b_new.to(b.dtype)
    return before, after
