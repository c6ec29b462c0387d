"""Model builders: CIFAR ResNets, small-image VGGs, and specs for torchvision / timm / your own.

``get_model(spec, num_classes=..., in_channels=...)`` resolves a spec; ``list_models()`` lists the
built-in names. This package does not import the pruning engine.
"""

from prunekit.models.cifar_resnet import (
    BasicBlock,
    CifarResNet,
    cifar_resnet,
    resnet20,
    resnet32,
    resnet44,
    resnet56,
    resnet110,
)
from prunekit.models.registry import MODELS, get_model, list_models, register_model
from prunekit.models.vgg_small import SmallVGG, vgg11_bn, vgg16_bn, vgg19_bn

__all__ = [
    "MODELS",
    "BasicBlock",
    "CifarResNet",
    "SmallVGG",
    "cifar_resnet",
    "get_model",
    "list_models",
    "register_model",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "vgg11_bn",
    "vgg16_bn",
    "vgg19_bn",
]
