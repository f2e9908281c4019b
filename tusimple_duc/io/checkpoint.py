"""Checkpoints in the released format: ``<prefix>-symbol.json`` + ``<prefix>-%04d.params``.

Format
------
The params file is an ``mx.nd.save`` dictionary with keys ``arg:<name>`` (weights, biases,
BatchNorm gamma/beta) and ``aux:<name>`` (BatchNorm ``moving_mean`` / ``moving_var``), exactly
what ``mx.model.save_checkpoint`` writes and the released
``ResNet_DUC_HDC_CityScapes-0020.params`` holds. The names follow
:mod:`tusimple_duc.io.names`: for the released architecture they ARE the released names;
other depths, stems and heads extend them (``conv4_36_3x3_weight`` for ResNet-152,
``conv1_7x7_s2_weight`` for the classic stem, ``fc1_cityscapes_deconv1_weight`` for the
deconv head). The symbol JSON is the released training graph of the network
(:func:`tusimple_duc.io.symbol.training_symbol`), so ``mx.mod.Module.load(prefix, epoch)``
binds the pair as the original scripts did.

Loading
-------
A checkpoint a training run wrote records the SHA-1 of its ``.params`` bytes in its
``.state.json``; :func:`load_checkpoint` checks it first (:mod:`tusimple_duc.io.checksum`).
:func:`load_checkpoint` reads the optional symbol JSON only to cross-check the architecture
(:mod:`tusimple_duc.io.symbol_check`: another network -> error; a JSON MXNet cannot parse,
such as the released one written by an MXNet 0.11 fork -> warning, then go on) and loads the
params into the Gluon network. :func:`load_params_file` loads one file, which may also be a
plain Gluon ``save_parameters`` file (structural keys such as ``backbone.stem.convs.0.conv.weight``)
or a ``ParameterDict.save`` file (parameter names without ``arg:``/``aux:``).

Loading is strict by default: any missing, unexpected or differently shaped array raises ONE
:class:`~tusimple_duc.io.matching.CheckpointMismatchError` (counts and first names on one
line, full lists as attributes). ``allow_missing`` leaves missing arrays (and arrays present
with another shape, e.g. the head when fine-tuning with another number of classes) to be
initialised by the caller, and ``allow_extra`` ignores unexpected ones; both are logged.
``strict=False`` allows both. Values are copied bit for bit.
"""
from __future__ import annotations

import glob
import logging
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import mxnet as mx

from tusimple_duc.errors import CheckpointError
from tusimple_duc.io.atomic import atomic_write_text
from tusimple_duc.io.checksum import state_path, verify_checkpoint_params
from tusimple_duc.io.matching import Comparison, compare_shapes, raise_if_mismatch
from tusimple_duc.io.names import ARG_PREFIX, checkpoint_key, is_checkpoint_key
from tusimple_duc.io.paramfile import read_params, write_params
from tusimple_duc.io.symbol import (DEFAULT_IGNORE_LABEL, INPUT_NAME, symbol_text,
                                     training_symbol)
from tusimple_duc.io.symbol_check import check_symbol_file
from tusimple_duc.models.presets import ModelSpec

log = logging.getLogger(__name__)

Context = Union[mx.Context, Sequence[mx.Context], None]

FORMAT_CHECKPOINT = "checkpoint"        # arg:/aux: keys (mx.model.save_checkpoint)
FORMAT_GLUON = "gluon"                  # Block.save_parameters: structural keys
FORMAT_GLUON_NAMES = "gluon-names"      # ParameterDict.save: parameter names


@dataclass(frozen=True)
class LoadReport:
    """What a load did.

    params_file: the file read. file_format: one of ``checkpoint``, ``gluon``, ``gluon-names``.
    comparison: file keys vs network keys (in the file's key space).
    loaded: Gluon names of the parameters that received values.
    symbol_checked: None (no symbol JSON), False (it did not parse), True (it matched).
    """

    params_file: str
    file_format: str
    comparison: Comparison
    loaded: Tuple[str, ...]
    symbol_checked: Optional[bool] = None


def params_path(prefix: str, epoch: int) -> str:
    """``<prefix>-%04d.params``."""
    return f"{prefix}-{int(epoch):04d}.params"


def symbol_path(prefix: str) -> str:
    """``<prefix>-symbol.json``."""
    return f"{prefix}-symbol.json"


def load_checkpoint(net: Any, prefix: str, epoch: int, strict: bool = True,
                    allow_missing: bool = False, allow_extra: bool = False,
                    ctx: Context = None) -> LoadReport:
    """Load ``<prefix>-%04d.params`` into ``net``, cross-checked by ``<prefix>-symbol.json``.

    Parameters
    ----------
    net : a Gluon block (root prefix ``''``), initialised or not.
    prefix, epoch : the checkpoint (``mx.model.save_checkpoint`` naming).
    strict : False allows missing and unexpected arrays (as both flags below).
    allow_missing : leave missing / differently shaped parameters untouched.
    allow_extra : ignore arrays the network does not have.
    ctx : context(s) for parameters that are not initialised yet (default CPU).

    Raises
    ------
    CheckpointError : missing params file (the message lists the epochs found), a params file
        whose bytes differ from the digest its ``.state.json`` records (``ChecksumError``), unreadable
        file, or (``CheckpointMismatchError``) arrays or symbol not matching the network.
    """
    path = params_path(prefix, epoch)
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such checkpoint ({_epochs_found(prefix)})")
    verify_checkpoint_params(path, state_path(prefix, epoch))
    sym_file = symbol_path(prefix)
    checked = check_symbol_file(net, sym_file) if os.path.exists(sym_file) else None
    report = load_params_file(net, path, strict, allow_missing, allow_extra, ctx)
    return LoadReport(report.params_file, report.file_format, report.comparison,
                      report.loaded, checked)


def load_params_file(net: Any, path: str, strict: bool = True, allow_missing: bool = False,
                     allow_extra: bool = False, ctx: Context = None) -> LoadReport:
    """Load one params file (checkpoint or Gluon format) into ``net``; see :func:`load_checkpoint`."""
    arrays = _without_inputs(read_params(path))
    file_format, by_key = _key_space(net, arrays)
    expected = {key: tuple(param.shape or ()) for key, param in by_key.items()}
    comparison = compare_shapes(expected, {key: value.shape for key, value in arrays.items()})
    allow_missing = allow_missing or not strict
    allow_extra = allow_extra or not strict
    raise_if_mismatch(comparison, path, "does not match the network", allow_missing, allow_extra)
    contexts = [ctx] if isinstance(ctx, mx.Context) else ctx
    for key in comparison.matched:
        assign_parameter(by_key[key], arrays[key], contexts)
    skipped = comparison.summary()
    if skipped:
        log.warning("%s: loaded %d arrays; not loaded: %s", path, len(comparison.matched), skipped)
    return LoadReport(path, file_format, comparison,
                      tuple(by_key[key].name for key in comparison.matched))


def checkpoint_arrays(net: Any) -> Dict[str, mx.nd.NDArray]:
    """``{arg:/aux: key: CPU copy}`` of every parameter of ``net``, in parameter order."""
    arrays = {}
    for name, param in net.collect_params().items():
        try:
            value = param.data(param.list_ctx()[0])
        except RuntimeError:
            raise CheckpointError(f"cannot save parameter {name}: it is not initialised") from None
        arrays[checkpoint_key(name)] = value.copyto(mx.cpu())
    return arrays


def save_checkpoint(net: Any, prefix: str, epoch: int,
                    ignore_label: int = DEFAULT_IGNORE_LABEL) -> Tuple[Optional[str], str]:
    """Write ``<prefix>-symbol.json`` and ``<prefix>-%04d.params`` (atomically).

    The params hold every parameter under its checkpoint key (for the released architecture:
    the released file's 326 ``arg:`` and 212 ``aux:`` names); the symbol is the released
    training graph with ``ignore_label``. A comparison system (``models.systems``, no
    ``ModelSpec``) has no released graph: only its params are written (symbol path None).
    Returns ``(symbol path, params path)``.
    """
    arrays = checkpoint_arrays(net)
    sym_file, params_file = symbol_path(prefix), params_path(prefix, epoch)
    if isinstance(getattr(net, "spec", None), ModelSpec):
        atomic_write_text(sym_file, symbol_text(training_symbol(net, ignore_label)))
    else:
        sym_file = None
    write_params(params_file, arrays)
    return sym_file, params_file


def _without_inputs(arrays: Dict[str, mx.nd.NDArray]) -> Dict[str, mx.nd.NDArray]:
    """Drop ``arg:data`` and ``arg:*_label``: input arrays some scripts saved with the weights
    (an executor's ``arg_dict``), not parameters."""
    inputs = [k for k in arrays if k == ARG_PREFIX + INPUT_NAME
              or (k.startswith(ARG_PREFIX) and k.endswith("_label"))]
    if inputs:
        log.info("ignoring input arrays %s", ", ".join(inputs))
    return {k: v for k, v in arrays.items() if k not in inputs}


def _key_space(net: Any, arrays: Dict[str, mx.nd.NDArray]) -> Tuple[str, Dict[str, Any]]:
    """The file's naming convention and ``{key: Parameter}`` of ``net`` in that convention."""
    if any(is_checkpoint_key(key) for key in arrays):
        return FORMAT_CHECKPOINT, {checkpoint_key(n): p for n, p in net.collect_params().items()}
    structural = dict(net._collect_params_with_prefix())  # Gluon's save_parameters keys
    by_name = dict(net.collect_params().items())
    if len(arrays.keys() & by_name.keys()) > len(arrays.keys() & structural.keys()):
        return FORMAT_GLUON_NAMES, by_name
    return FORMAT_GLUON, structural


def assign_parameter(param: Any, value: mx.nd.NDArray,
                     contexts: Optional[Sequence[mx.Context]] = None) -> None:
    """Copy ``value`` into the Gluon ``param`` bit for bit (cast to its dtype if it differs);
    a parameter that is not initialised yet is initialised on ``contexts`` (default CPU)."""
    try:
        param.list_ctx()
        target = None  # initialised (or deferred): keep its own contexts
    except RuntimeError:
        target = list(contexts) if contexts else [mx.cpu()]
    param._load_init(value, target, cast_dtype=True, dtype_source="current")


def _epochs_found(prefix: str) -> str:
    pattern = re.compile(re.escape(os.path.basename(prefix)) + r"-(\d{4,})\.params$")
    epochs = sorted(int(m.group(1)) for f in glob.glob(glob.escape(prefix) + "-*.params")
                    if (m := pattern.match(os.path.basename(f))))
    if epochs:
        return "epochs found: " + ", ".join(map(str, epochs))
    return f"no {os.path.basename(prefix)}-NNNN.params in {os.path.dirname(prefix) or '.'}"
