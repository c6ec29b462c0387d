"""The exceptions prunekit raises.

Every error a user can cause is a :class:`PrunekitError`. Each carries ``module``: the qualified
name of the module (or the argument / YAML path) it is about, so tools can point at the culprit.
Messages say what is wrong and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "PrunekitError",
    "ConfigError",
    "UnknownNameError",
    "ExampleInputError",
    "TraceError",
    "UnsupportedLayerError",
    "NoPrunableGroupError",
    "SurgeryError",
    "CriterionError",
    "EquivalenceError",
    "option_error",
    "NonFiniteError",
    "UntrustedCodeError",
]


class PrunekitError(Exception):
    """Base class of every error prunekit raises on purpose.

    Args:
        message: what is wrong and what to do.
        module: the module, argument or config path the error is about (``None`` if global).
        detail: for an invalid option, what is wrong without the option's name (``must be an
            int >= 1, but got 0``), so each front end can name the option in its own spelling
            (``round_to``, ``--round-to``, a YAML path) without rewriting the message.
    """

    def __init__(self, message: str, *, module: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.module = module
        self.detail = detail


class ConfigError(PrunekitError, ValueError):
    """An argument or configuration value is invalid (names the argument or dotted path)."""


class UnknownNameError(ConfigError):
    """A name (module, criterion, schedule...) is not known; the message lists the choices."""


class ExampleInputError(PrunekitError, ValueError):
    """The example inputs are of the wrong type or shape for the model."""


class TraceError(PrunekitError):
    """The model could not be traced; the message names the op or Python construct."""


class UnsupportedLayerError(PrunekitError):
    """A leaf module has parameters and no layer rule; register one with ``register_rule``."""


class NoPrunableGroupError(PrunekitError):
    """The model has no channel group that can be pruned (all locked or single-channel)."""


class CriterionError(PrunekitError):
    """A criterion failed while scoring a group; the message names the criterion and the group's
    layers, and the criterion's own exception is chained."""


class SurgeryError(PrunekitError):
    """Physical pruning failed; the model was restored to its state before the call."""


class EquivalenceError(PrunekitError, AssertionError):
    """A pruned model does not compute what the zeroed-channel original computes."""


class NonFiniteError(PrunekitError, ValueError):
    """A weight, buffer, input or loss is NaN or infinite (the message names the tensor)."""


class UntrustedCodeError(ConfigError):
    """A file names code to import (a ``module:function`` builder) and the caller did not opt in.

    Loading is data-only by default: only builders from prunekit's registries (prunekit models,
    ``torchvision:``, ``timm:``) are built from a file; pass ``trust_builder=True`` (CLI:
    ``--trust-builder``) to import any other builder a file names.
    """


def option_error(field: str, detail: str, cls: type[ConfigError] = ConfigError) -> ConfigError:
    """``cls("<field>: <detail>")`` with ``module=field`` and ``detail`` set, so a front end can
    name the option in its own spelling (``--round-to: <detail>``)."""
    return cls(f"{field}: {detail}", module=field, detail=detail)
