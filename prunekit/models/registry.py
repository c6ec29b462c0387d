"""Models by spec: ``get_model("resnet56", num_classes=10, in_channels=3)``.

A spec is one of:

- a built-in name (:func:`list_models`), or one added with :func:`register_model`;
- ``torchvision:NAME``: a ``torchvision.models`` classification builder, called with
  ``weights=None`` and ``num_classes``; for ``in_channels != 3`` its stem conv is replaced;
- ``timm:NAME``: ``timm.create_model(NAME, pretrained=False, num_classes=..., in_chans=...)``
  (needs ``pip install timm``);
- ``package.module:function``: imported and called as ``function(num_classes=..., in_channels=...)``.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from collections.abc import Callable
from typing import Protocol

from torch import nn

from prunekit.errors import ConfigError, UnknownNameError, UntrustedCodeError
from prunekit.models.cifar_resnet import resnet20, resnet32, resnet44, resnet56, resnet110
from prunekit.models.vgg_small import vgg11_bn, vgg16_bn, vgg19_bn
from prunekit.registry import Registry

__all__ = [
    "MODELS",
    "ModelBuilder",
    "get_model",
    "list_models",
    "register_model",
    "is_registry_spec",
    "require_trusted_spec",
]


class ModelBuilder(Protocol):
    """Builds a model: ``builder(num_classes=..., in_channels=...)``."""

    def __call__(self, *, num_classes: int, in_channels: int) -> nn.Module: ...


MODELS: Registry[ModelBuilder] = Registry("model")


def register_model(name: str, *, description: str = "") -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator: registers a :class:`ModelBuilder` under ``name``."""
    return MODELS.register(name, description=description)


for _builder in (resnet20, resnet32, resnet44, resnet56, resnet110, vgg11_bn, vgg16_bn, vgg19_bn):
    MODELS.add(_builder.__name__, _builder, description=(_builder.__doc__ or "").strip().splitlines()[0])


def list_models(pattern: str = "*") -> dict[str, str]:
    """Registered model names matching the shell-style ``pattern``, with one-line descriptions."""
    return {name: MODELS.describe(name) for name in MODELS.names() if fnmatch.fnmatchcase(name, pattern)}


def is_registry_spec(spec: object) -> bool:
    """True for a spec that names no code to import: a registered name, ``torchvision:NAME`` or
    ``timm:NAME``. Only those are built from a file (a saved model, a checkpoint) by default."""
    if not isinstance(spec, str) or not spec:
        return False
    prefix, sep, rest = spec.partition(":")
    if not sep:
        return True  # a registry name: an unknown one fails with the list of choices
    return prefix in ("torchvision", "timm") and bool(rest) and ":" not in rest and "." not in rest


def require_trusted_spec(spec: object, *, trust_builder: bool, where: str) -> None:
    """Refuses a ``module:function`` spec read from a file unless ``trust_builder`` is True.

    Raises:
        UntrustedCodeError: the spec would import and run code named by the file ``where``.
    """
    if trust_builder or is_registry_spec(spec):
        return
    raise UntrustedCodeError(
        f"{where}: builder {spec!r} is not a prunekit, torchvision: or timm: model; building it would import "
        "and run code named by that file, which can do anything your account can. If you trust the file, "
        "pass trust_builder=True (CLI: --trust-builder)",
        module=where,
    )


def _replace_stem(model: nn.Module, in_channels: int, *, spec: str) -> nn.Module:
    """Swaps the model's stem conv for one reading ``in_channels`` channels, in place.

    The stem is the first module (in registration order) that has parameters; it must be a plain
    ``nn.Conv2d`` with ``groups == 1``. The new conv has the same hyper-parameters and
    Kaiming-normal weights.
    """
    stem_name, stem = next(
        ((name, m) for name, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))),
        ("", None),
    )
    if type(stem) is not nn.Conv2d or stem.groups != 1:
        found = (
            "no module with parameters"
            if stem is None
            else f"{stem_name or '<the model itself>'!r} ({type(stem).__name__})"
        )
        raise ConfigError(
            f"in_channels={in_channels}: {spec} has no obvious stem conv to adapt (the first module with parameters is {found}, "
            "not a plain Conv2d with groups=1); build it yourself with a 'module:function' spec",
            module=stem_name or spec,
        )
    new = nn.Conv2d(
        in_channels,
        stem.out_channels,
        kernel_size=stem.kernel_size,  # type: ignore[arg-type]
        stride=stem.stride,  # type: ignore[arg-type]
        padding=stem.padding,  # type: ignore[arg-type]
        dilation=stem.dilation,  # type: ignore[arg-type]
        bias=stem.bias is not None,
        padding_mode=stem.padding_mode,
    )
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    parent_name, _, attr = stem_name.rpartition(".")
    setattr(model.get_submodule(parent_name), attr, new)
    return model


def _torchvision(name: str, *, num_classes: int, in_channels: int) -> nn.Module:
    import torchvision.models as tvm

    choices = sorted(tvm.list_models(module=tvm))
    if name not in choices:
        close = difflib.get_close_matches(name, choices, n=1)
        hint = f"; did you mean 'torchvision:{close[0]}'?" if close else ""
        raise UnknownNameError(
            f"unknown torchvision classification model {name!r}{hint} Choices: {', '.join(choices)}", module=name
        )
    model = tvm.get_model(name, weights=None, num_classes=num_classes)
    if in_channels != 3:
        _replace_stem(model, in_channels, spec=f"torchvision:{name}")
    return model


def _timm(name: str, *, num_classes: int, in_channels: int) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise ConfigError(
            f"'timm:{name}' needs timm, which is not installed: pip install timm", module="timm"
        ) from None
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=1)
        hint = f"; did you mean 'timm:{close[0]}'?" if close else ""
        raise UnknownNameError(f"unknown timm model {name!r}{hint}", module=name)
    return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_channels)


def _import_builder(spec: str, *, num_classes: int, in_channels: int) -> nn.Module:
    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise ConfigError(f"model spec {spec!r} must look like 'package.module:function'", module=spec)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"model spec {spec!r}: cannot import {module_name!r} ({exc})", module=spec) from exc
    builder = getattr(module, attr, None)
    if not callable(builder):
        raise ConfigError(f"model spec {spec!r}: {module_name!r} has no callable {attr!r}", module=spec)
    model = builder(num_classes=num_classes, in_channels=in_channels)
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"model spec {spec!r}: the builder must return an nn.Module, but got {type(model).__name__}", module=spec
        )
    return model


def get_model(spec: str, *, num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """Builds a fresh, randomly initialised model from a spec (see the module docstring).

    Args:
        spec: ``NAME``, ``torchvision:NAME``, ``timm:NAME`` or ``package.module:function``.
        num_classes: size of the classifier output.
        in_channels: channels of the input images (1 for Fashion-MNIST).

    Raises:
        UnknownNameError: an unknown built-in, torchvision or timm name (with a suggestion).
        ConfigError: bad sizes, timm missing, an import that fails, or no stem conv to adapt.
    """
    if not isinstance(spec, str) or not spec:
        raise ConfigError(f"model spec must be a non-empty string, but got {spec!r}", module="model")
    for arg, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{arg} must be a positive int, but got {value!r}", module=arg)
    prefix, sep, rest = spec.partition(":")
    if not sep:
        return MODELS.get(spec, argument="model")(num_classes=num_classes, in_channels=in_channels)
    if prefix == "torchvision":
        return _torchvision(rest, num_classes=num_classes, in_channels=in_channels)
    if prefix == "timm":
        return _timm(rest, num_classes=num_classes, in_channels=in_channels)
    return _import_builder(spec, num_classes=num_classes, in_channels=in_channels)
