"""Checkpoint key scheme: Gluon parameter names <-> ``arg:`` / ``aux:`` keys of the released files.

The released checkpoint (``mx.model.save_checkpoint``) stores every learnable array as
``arg:<name>`` and every BatchNorm statistic as ``aux:<name>``, with MXNet's symbol names
``<bn>_moving_mean`` / ``<bn>_moving_var``. Our Gluon networks use root prefix ``''`` and the
released names for every parameter, except that Gluon calls the statistics
``<bn>_running_mean`` / ``<bn>_running_var``. The scheme, for ANY network of this project
(every depth, stem and head), is therefore:

==========================================  ==========================================
Gluon parameter name                        checkpoint key
==========================================  ==========================================
``<x>_running_mean``                        ``aux:<x>_moving_mean``
``<x>_running_var``                         ``aux:<x>_moving_var``
anything else ``<p>``                       ``arg:<p>``
==========================================  ==========================================

e.g. ``conv4_23_3x3_weight`` -> ``arg:conv4_23_3x3_weight``,
``conv1_1_3x3_s2/bn_running_mean`` -> ``aux:conv1_1_3x3_s2/bn_moving_mean``,
``fc1_cityscapes_c0_bias`` -> ``arg:fc1_cityscapes_c0_bias``. Other depths and stems extend
the released names (``conv4_36_3x3`` for ResNet-152, ``conv1_7x7_s2`` for the classic stem);
other heads use their own parameter names under the same rule. The same names, without
the ``arg:`` / ``aux:`` prefix, are the variables of the exported symbol.
"""
from __future__ import annotations

from typing import Tuple

ARG_PREFIX = "arg:"
AUX_PREFIX = "aux:"

_GLUON_TO_SYMBOL_STATS: Tuple[Tuple[str, str], ...] = (
    ("_running_mean", "_moving_mean"), ("_running_var", "_moving_var"))


def is_statistic(gluon_name: str) -> bool:
    """True for BatchNorm running statistics (``aux`` arrays)."""
    return gluon_name.endswith(tuple(g for g, _ in _GLUON_TO_SYMBOL_STATS))


def symbol_name(gluon_name: str) -> str:
    """The MXNet symbol variable name of a Gluon parameter (``running_*`` -> ``moving_*``)."""
    for gluon_suffix, symbol_suffix in _GLUON_TO_SYMBOL_STATS:
        if gluon_name.endswith(gluon_suffix):
            return gluon_name[: -len(gluon_suffix)] + symbol_suffix
    return gluon_name


def gluon_name(symbol_var: str) -> str:
    """Inverse of :func:`symbol_name`."""
    for gluon_suffix, symbol_suffix in _GLUON_TO_SYMBOL_STATS:
        if symbol_var.endswith(symbol_suffix):
            return symbol_var[: -len(symbol_suffix)] + gluon_suffix
    return symbol_var


def checkpoint_key(gluon_param_name: str) -> str:
    """``arg:<name>`` or ``aux:<symbol name>`` for a Gluon parameter name."""
    prefix = AUX_PREFIX if is_statistic(gluon_param_name) else ARG_PREFIX
    return prefix + symbol_name(gluon_param_name)


def is_checkpoint_key(key: str) -> bool:
    """True when ``key`` carries an ``arg:`` or ``aux:`` prefix."""
    return key.startswith((ARG_PREFIX, AUX_PREFIX))
