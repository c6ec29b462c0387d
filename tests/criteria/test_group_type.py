"""group_type: Filters scores the producers' output slices, Channels the consumers' input slices."""

from __future__ import annotations

import numpy as np
import pytest

from prunekit.criteria import get_criterion
from prunekit.criteria.group_type import restrict_group, score_group, scoring_members
from prunekit.errors import ConfigError
from tests.criteria.nets import group0, tiny_net


def test_filters_scores_the_producing_conv_only():
    net = tiny_net()
    g = group0(net)
    assert [str(m) for m in scoring_members(net, g, "Filters")] == ["0:out"]
    # conv 0 out slices: |w_c| + |b_c| = [1 + 0, 2 + 1, 0.5 + 1]; BatchNorm is not a producer
    np.testing.assert_allclose(score_group(get_criterion("l1"), net, g, group_type="Filters"), [1.0, 3.0, 1.5])
    # L2 over the same slices: sqrt(w^2 + b^2)
    np.testing.assert_allclose(
        score_group(get_criterion("l2"), net, g, group_type="Filters"), np.sqrt([1.0, 5.0, 1.25])
    )


@pytest.mark.parametrize("group_type", ["Channels", "Rows"])
def test_channels_scores_the_consumers_input_slices(group_type):
    net = tiny_net()
    g = group0(net)
    assert [str(m) for m in scoring_members(net, g, group_type)] == ["3:in"]
    # conv 3 weight columns [[1, 0, 2], [-1, 1, 0]]: |1| + |-1|, |0| + |1|, |2| + |0|
    np.testing.assert_allclose(score_group(get_criterion("l1"), net, g, group_type=group_type), [2.0, 1.0, 2.0])


def test_none_scores_the_whole_group_and_the_group_is_not_changed():
    net = tiny_net()
    g = group0(net)
    whole = get_criterion("l1").scores(net, g)
    np.testing.assert_allclose(score_group(get_criterion("l1"), net, g), whole)
    view = restrict_group(net, g, "Channels")
    assert len(view.members) == 1 and len(g.members) > 1 and view.id == g.id and view.size == g.size


def test_unknown_group_type():
    net = tiny_net()
    with pytest.raises(ConfigError, match="group_type must be one of"):
        scoring_members(net, group0(net), "Kernels")


def test_bn_scale_missing_skip_keeps_groups_without_batchnorm(caplog):
    import logging

    import torch
    import torch.nn as nn

    import prunekit
    from prunekit.criteria import BNScaleCriterion

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 6, 1), nn.ReLU(), nn.Conv2d(6, 2, 1)
    )
    x = torch.randn(2, 1, 4, 4)
    with pytest.raises(ConfigError, match="has no affine BatchNorm layer"):
        prunekit.prune(net, x, sparsity=0.5, criterion="bn_scale")
    with caplog.at_level(logging.INFO, logger="prunekit.criteria.bn_scale"):
        pruned, _ = prunekit.prune(net, x, sparsity=0.5, criterion=BNScaleCriterion(missing="skip"))
    assert pruned[0].out_channels == 2 and pruned[3].out_channels == 6  # the group without BN is kept
    assert "has no affine BatchNorm; its channels are kept" in caplog.text
    with pytest.raises(ConfigError, match="missing must be one of"):
        BNScaleCriterion(missing="ignore")
