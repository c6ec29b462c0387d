"""The layer rules prunekit ships, registered for the standard ``torch.nn`` layers."""

from __future__ import annotations

import torch.nn as nn

from prunekit.rules.base import register_rule, register_rule_by_name
from prunekit.rules.conv import ConvRule
from prunekit.rules.linear import EmbeddingRule, LinearRule
from prunekit.rules.norm import GroupNormRule, LayerNormRule, PerChannelRule
from prunekit.rules.shape import (
    ChannelShuffleRule,
    ElementwiseRule,
    FlattenRule,
    OpaqueRule,
    SoftmaxRule,
    SpatialRule,
    UnflattenRule,
)
from prunekit.rules.standin import ConstantOutputRule, EmptiedRule

__all__: list[str] = []

_t: type[nn.Module]  # the loop variable of every registration below

_conv = ConvRule()
for _t in (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d):
    register_rule(_t, _conv)

_bn = PerChannelRule(("weight", "bias", "running_mean", "running_var"), "num_features")
for _t in (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
):
    register_rule(_t, _bn)
register_rule(nn.PReLU, PerChannelRule(("weight",), "num_parameters"))
register_rule(nn.LayerNorm, LayerNormRule())
register_rule(nn.RMSNorm, LayerNormRule())
register_rule(nn.GroupNorm, GroupNormRule())
register_rule(nn.Linear, LinearRule())
register_rule(nn.Embedding, EmbeddingRule())

_elementwise = ElementwiseRule()
for _t in (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.Softsign,
    nn.Tanhshrink,
    nn.LogSigmoid,
    nn.Threshold,
    nn.RReLU,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
):
    register_rule(_t, _elementwise)
# Stochastic depth / drop-path scale whole samples (noise of shape (N, 1, 1, ...)), never one
# channel apart from another: channels pass through in both modes. As leaves, their ``training``
# branch is not traced, so a model whose only train-mode difference they are is traced once.
for _name in ("torchvision.ops.stochastic_depth.StochasticDepth", "timm.layers.drop.DropPath"):
    register_rule_by_name(_name, _elementwise)

for _t, _k in (
    (nn.MaxPool1d, 1),
    (nn.MaxPool2d, 2),
    (nn.MaxPool3d, 3),
    (nn.AvgPool1d, 1),
    (nn.AvgPool2d, 2),
    (nn.AvgPool3d, 3),
    (nn.AdaptiveAvgPool1d, 1),
    (nn.AdaptiveAvgPool2d, 2),
    (nn.AdaptiveAvgPool3d, 3),
    (nn.AdaptiveMaxPool1d, 1),
    (nn.AdaptiveMaxPool2d, 2),
    (nn.AdaptiveMaxPool3d, 3),
    (nn.LPPool1d, 1),
    (nn.LPPool2d, 2),
    (nn.ZeroPad1d, 1),
    (nn.ZeroPad2d, 2),
    (nn.ZeroPad3d, 3),
    (nn.ConstantPad1d, 1),
    (nn.ConstantPad2d, 2),
    (nn.ConstantPad3d, 3),
    (nn.ReflectionPad1d, 1),
    (nn.ReflectionPad2d, 2),
    (nn.ReflectionPad3d, 3),
    (nn.ReplicationPad1d, 1),
    (nn.ReplicationPad2d, 2),
    (nn.ReplicationPad3d, 3),
    (nn.Upsample, 2),
    (nn.UpsamplingNearest2d, 2),
    (nn.UpsamplingBilinear2d, 2),
):
    register_rule(_t, SpatialRule(_k))

register_rule(nn.Flatten, FlattenRule())
register_rule(nn.Unflatten, UnflattenRule())
register_rule(nn.Softmax, SoftmaxRule())
register_rule(nn.LogSoftmax, SoftmaxRule())
register_rule(nn.ChannelShuffle, ChannelShuffleRule())
register_rule(
    nn.MultiheadAttention, OpaqueRule("attention head structure is not pruned (embed_dim is tied to the heads)")
)
register_rule(nn.LocalResponseNorm, OpaqueRule("normalises across neighbouring channels"))
register_rule(nn.PixelShuffle, OpaqueRule("moves channels into space"))
register_rule(nn.PixelUnshuffle, OpaqueRule("moves space into channels"))
for _t in (
    nn.RNN,
    nn.LSTM,
    nn.GRU,
    nn.Bilinear,
    nn.TransformerEncoderLayer,
    nn.TransformerDecoderLayer,
    nn.Transformer,
    nn.TransformerEncoder,
    nn.TransformerDecoder,
):
    register_rule(_t, OpaqueRule("recurrent / transformer layers are kept whole"))

# the stand-ins of a removed branch, bound by name: prunekit.surgery must not load with the rules
register_rule_by_name("prunekit.surgery.standins.Emptied", EmptiedRule())
register_rule_by_name("prunekit.surgery.standins.ConstantOutput", ConstantOutputRule())
