"""Channel pruning with feature-map reconstruction (He et al. 2017; ThiNet, Luo et al. 2017).

``channel_prune_`` chooses the channels of every group by how well the remaining ones rebuild the
consumers' outputs (LASSO, ThiNet's greedy order, or any criterion) and refits the consumers by
least squares; ``reconstruct_`` is the refit alone, to follow any other pruning.
"""

from prunekit.reconstruction.channel_pruning import METHODS, channel_prune_
from prunekit.reconstruction.contributions import Problem, contribution_gram
from prunekit.reconstruction.lasso import lasso_gram, lasso_scores
from prunekit.reconstruction.reconstruct import reconstruct_
from prunekit.reconstruction.refit import least_squares, refit_, relative_error
from prunekit.reconstruction.thinet import thinet_scores
from prunekit.report import LayerReconstruction, ReconstructionReport

__all__ = [
    "channel_prune_",
    "reconstruct_",
    "METHODS",
    "ReconstructionReport",
    "LayerReconstruction",
    "Problem",
    "contribution_gram",
    "lasso_gram",
    "lasso_scores",
    "thinet_scores",
    "least_squares",
    "refit_",
    "relative_error",
]
