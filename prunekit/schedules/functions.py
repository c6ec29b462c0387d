"""Sparsity schedules as pure functions of the training step.

Each function maps a step (an int >= 0) to the target fraction of channels removed at that step.
They keep no state, so a run that resumes at step ``t`` gets exactly the value it would have had.
"""

from __future__ import annotations

import operator

from prunekit.errors import ConfigError

__all__ = [
    "one_shot_sparsity",
    "iterative_sparsity",
    "agp_sparsity",
    "distiller_agp_sparsity",
    "check_fraction",
    "check_step",
]


def check_fraction(value: object, name: str) -> float:
    """Returns ``value`` as a float in [0, 1) or raises ConfigError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"{name} must be in [0, 1), but got {value!r}", module=name)
    return float(value)


def check_step(value: object, name: str, *, minimum: int = 0) -> int:
    """Returns ``value`` as an int >= ``minimum`` or raises ConfigError naming ``name``."""
    try:
        if isinstance(value, bool):
            raise TypeError
        out = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ConfigError(f"{name} must be an int >= {minimum}, but got {value!r}", module=name) from None
    if out < minimum:
        raise ConfigError(f"{name} must be an int >= {minimum}, but got {value!r}", module=name)
    return out


def _check_window(start: object, end: object) -> tuple[int, int]:
    start_i = check_step(start, "start")
    end_i = check_step(end, "end")
    if end_i <= start_i:
        raise ConfigError(f"end must be greater than start ({start_i}), but got {end!r}", module="end")
    return start_i, end_i


def one_shot_sparsity(step: int, *, final: float, at: int) -> float:
    """All at once: ``0`` before step ``at``, ``final`` from step ``at`` on.

    Args:
        step: the current step.
        final: the sparsity to reach, in [0, 1).
        at: the step at which to prune.
    """
    t = check_step(step, "step")
    final_f = check_fraction(final, "final")
    at_i = check_step(at, "at")
    return final_f if t >= at_i else 0.0


def iterative_sparsity(step: int, *, final: float, start: int, end: int, steps: int) -> float:
    """``steps`` equal linear increments between ``start`` and ``end``.

    .. math:: s_t = s_f \\cdot \\min\\left(N, \\left\\lfloor N (t - t_0) / (t_e - t_0) \\right\\rfloor\\right) / N

    for ``t >= t0`` and ``0`` before, so the first increment comes at ``t0 + (te - t0) / N``
    (rounded up to a whole step) and ``final`` is reached exactly at ``end``: the iterative
    prune-retrain recipe of Han et al. 2015, "Learning both Weights and Connections".

    Args:
        step: the current step.
        final: the sparsity reached at ``end``, in [0, 1).
        start: the last step before pruning begins.
        end: the step at which ``final`` is reached (``> start``).
        steps: the number N of equal increments (``>= 1``).
    """
    t = check_step(step, "step")
    final_f = check_fraction(final, "final")
    start_i, end_i = _check_window(start, end)
    n = check_step(steps, "steps", minimum=1)
    if t <= start_i:
        return 0.0
    k = min(n, (n * (t - start_i)) // (end_i - start_i))  # integer arithmetic: exact boundaries
    return final_f * k / n


def agp_sparsity(step: int, *, initial: float, final: float, start: int, end: int, frequency: int) -> float:
    """Automated gradual pruning (Zhu & Gupta 2017, "To prune, or not to prune").

    .. math:: s_t = s_f + (s_i - s_f) \\left(1 - \\frac{t - t_0}{n \\Delta t}\\right)^3
       \\quad \\text{for } t_0 \\le t \\le t_0 + n \\Delta t

    with ``t0 = start``, ``n * dt = end - start`` and ``dt = frequency``; ``s_i`` before ``t0`` and
    ``s_f`` from ``end`` on. The value changes only at ``t0 + k * dt``: between those steps it
    holds the value of the last one.

    Note:
        If ``end - start`` is not a multiple of ``frequency`` the last change before ``end`` falls
        short of ``final`` and ``final`` is reached at ``end`` itself (the paper assumes a
        multiple).

    Args:
        step: the current step t.
        initial: s_i, in [0, 1).
        final: s_f, in [initial, 1).
        start: t0.
        end: t0 + n * dt (``> start``).
        frequency: dt, steps between changes (``>= 1``).
    """
    t = check_step(step, "step")
    s_i = check_fraction(initial, "initial")
    s_f = check_fraction(final, "final")
    if s_f < s_i:
        raise ConfigError(f"final must be >= initial ({s_i}), but got {final!r}", module="final")
    start_i, end_i = _check_window(start, end)
    dt = check_step(frequency, "frequency", minimum=1)
    if t < start_i:
        return s_i
    if t >= end_i:
        return s_f
    t_eff = start_i + ((t - start_i) // dt) * dt  # hold the value between pruning steps
    return s_f + (s_i - s_f) * (1.0 - (t_eff - start_i) / (end_i - start_i)) ** 3


def distiller_agp_sparsity(
    epoch: int, *, initial: float, final: float, start: int, end: int, frequency: int = 1
) -> float:
    """Distiller's AGP target for a pruner whose policy runs from ``start`` to ``end`` (exclusive).

    .. math:: s_e = s_f + (s_i - s_f) \\left(1 - \\frac{e - t_0}{span}\\right)^3,
       \\quad span = \\left\\lfloor \\frac{t_e - t_0 - 1}{\\Delta t} \\right\\rfloor \\Delta t

    the formula of Zhu & Gupta 2017 as ``distiller.pruning.AutomatedGradualPrunerBase`` computes
    it: ``final`` is reached at the last policy epoch ``t0 + span`` (``<= end - 1``), ``initial``
    before ``t0`` and ``final`` after ``t0 + span``.

    Raises:
        ConfigError: ``span`` is 0 (the window holds a single pruning epoch).
    """
    e = check_step(epoch, "epoch")
    s_i, s_f = check_fraction(initial, "initial_sparsity"), check_fraction(final, "final_sparsity")
    start_i, end_i = _check_window(start, end)
    dt = check_step(frequency, "frequency", minimum=1)
    span = ((end_i - start_i - 1) // dt) * dt
    if span <= 0:
        raise ConfigError(
            f"ending_epoch - starting_epoch - 1 must be >= frequency ({dt}) for an AGP pruner, but the window "
            f"[{start_i}, {end_i}) holds one pruning epoch",
            module="ending_epoch",
        )
    if e < start_i:
        return s_i
    e_eff = start_i + min(((e - start_i) // dt) * dt, span)
    return s_f + (s_i - s_f) * (1.0 - (e_eff - start_i) / span) ** 3
