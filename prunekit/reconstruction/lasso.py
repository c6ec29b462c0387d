"""Channel selection by LASSO on the channels' contributions (He, Zhang & Sun 2017).

"Channel Pruning for Accelerating Very Deep Neural Networks" (ICCV 2017), eq. (3): with ``Z_c``
the contribution of input channel ``c`` to the layer's sampled outputs and ``Y`` the original
outputs,

    beta* = argmin_beta  1/2 ||Y - sum_c beta_c Z_c||^2 + lambda ||beta||_1,

and ``lambda`` is increased until at most ``c'`` coefficients are non-zero; those channels are
kept. In Gram form (:mod:`~prunekit.reconstruction.contributions`) the objective is
``1/2 beta^T G beta - g^T beta + lambda sum_c w_c |beta_c|``, which this module minimises by FISTA
(Beck & Teboulle 2009: a gradient step, soft-thresholding, Nesterov momentum), with ``lambda``
found by bisection on a log scale.

Note:
    Why a hand-written solver: the problem has one variable per channel (tens to a few hundred)
    and is given by its Gram matrix; neither torch nor numpy ships a LASSO solver, and
    scikit-learn's (``Lasso``, ``lars_path_gram``) would add scipy and scikit-learn as
    dependencies for a loop of a dozen lines. FISTA on a known Gram matrix is exact up to
    ``tol`` and runs in milliseconds. Deviation from the paper: the contributions are not
    normalised by ``||W_c||_F`` (``beta = 1`` reproduces the layer exactly); the paper's
    alternating updates of ``W`` are replaced by one least-squares refit after the selection
    (the paper's own fast variant).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["lasso_gram", "lasso_scores"]


def lasso_gram(
    gram: torch.Tensor,
    lin: torch.Tensor,
    lam: float,
    *,
    weights: torch.Tensor | None = None,
    init: torch.Tensor | None = None,
    iters: int = 2000,
    tol: float = 1e-9,
) -> torch.Tensor:
    """``argmin 1/2 b^T G b - g^T b + lam * sum_c w_c |b_c|`` by FISTA (float64)."""
    gram, lin = gram.double(), lin.double()
    w = torch.ones_like(lin) if weights is None else weights.double()
    step = 1.0 / max(float(torch.linalg.eigvalsh(gram).max()), 1e-30)
    beta = torch.zeros_like(lin) if init is None else init.double().clone()
    momentum, t = beta.clone(), 1.0
    for _ in range(iters):
        grad = gram @ momentum - lin
        z = momentum - step * grad
        new = torch.sign(z) * torch.clamp(z.abs() - step * lam * w, min=0.0)
        t_next = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
        momentum = new + ((t - 1.0) / t_next) * (new - beta)
        delta = float((new - beta).abs().max())
        beta, t = new, t_next
        if delta < tol:
            break
    return beta


def lasso_scores(gram: torch.Tensor, lin: torch.Tensor, keep: int, *, free: np.ndarray, steps: int = 40) -> np.ndarray:
    """Scores that keep the ``keep`` free channels LASSO retains (higher = kept first).

    ``lambda`` is bisected (log scale) to the smallest value leaving at most ``keep`` non-zero
    coefficients among the ``free`` channels (locked ones are not penalised). The survivors score
    ``1 + |beta|``; the others score ``|beta|`` at the last ``lambda`` that kept more than
    ``keep``, normalised into [0, 1), so a caller removing more or fewer (balanced cells) still
    gets the LASSO order.
    """
    free_t = torch.as_tensor(free, dtype=torch.bool)
    weights = free_t.double()
    lam_max = float((lin.abs() * weights).max()) + 1e-30
    lo, hi = -14.0, 0.0  # log10 of lambda / lam_max
    beta_hi = torch.zeros_like(lin, dtype=torch.float64)
    beta_lo = lasso_gram(gram, lin, lam_max * 10.0**lo, weights=weights)

    def nnz(b: torch.Tensor) -> int:
        return int(((b != 0) & free_t).sum())

    if nnz(beta_lo) <= keep:
        beta_hi = beta_lo
    else:
        for _ in range(steps):
            mid = (lo + hi) / 2.0
            b = lasso_gram(gram, lin, lam_max * 10.0**mid, weights=weights, init=beta_lo)
            if nnz(b) <= keep:
                hi, beta_hi = mid, b
            else:
                lo, beta_lo = mid, b
            if nnz(beta_hi) == keep:
                break
    scores = beta_lo.abs() / (float(beta_lo.abs().max()) + 1e-30) * 0.999
    survivors = (beta_hi != 0) & free_t
    scores[survivors] = 1.0 + beta_hi.abs()[survivors]
    return scores.numpy()
