"""The optimizer state of a checkpoint, in a format that cannot run code when read.

MXNet's own ``gluon.Trainer.save_states`` pickles the updater (``Updater.get_states``) and
``load_states`` unpickles it: a ``.states`` file from someone else can run any code.
Here the state is split in two:

* ``<prefix>-%04d.states``: ``mx.nd.save`` of the optimizer's arrays keyed by parameter
  name (SGD: the momentum ``<name>``; a state of several arrays ``<name>/0``, ``<name>/1``);
  MXNet's NDArray-list format holds arrays only;
* counters and layout, JSON (stored in the checkpoint's ``.state.json``, see ``state.py``):
  ``{"format": "nd-v1", "num_update": n, "update_counts": {device_id: {name: count}},
  "layout": {name: "array" | "none" | k}}`` (``k``: a tuple of k arrays).

A pickled ``.states`` (this project's earlier checkpoints, or ``Trainer.save_states``) is
read only when the caller trusts it (``train.py --trust-pickled-states``).
"""
from __future__ import annotations

import pickle
from typing import Any, Dict, List, Optional, Union

import mxnet as mx
from mxnet import gluon

from tusimple_duc.errors import CheckpointError
from tusimple_duc.io.paramfile import check_finite, write_params

FORMAT = "nd-v1"
#: first 8 bytes of an ``mx.nd.save`` file (``kMXAPINDArrayListMagic`` 0x112, little-endian uint64)
ND_LIST_MAGIC = (0x112).to_bytes(8, "little")
TRUST_FLAG = "--trust-pickled-states"

State = Union[None, mx.nd.NDArray, tuple, list]


def ready_trainer(trainer: gluon.Trainer) -> None:
    """Create the trainer's kvstore and updaters if no step has done it yet (as
    ``Trainer.save_states`` / ``load_states`` do). Creating the kvstore copies every
    parameter of the first device to the others (``kvstore.broadcast``), BatchNorm
    statistics included."""
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    if trainer._params_to_init:
        trainer._init_params()
    if trainer._update_on_kvstore:
        raise CheckpointError("optimizer state on the kvstore (update_on_kvstore) is not supported")


def _names(trainer: gluon.Trainer) -> List[str]:
    return [param.name for param in trainer._params]


def save_optimizer_state(trainer: gluon.Trainer, path: str) -> Dict[str, Any]:
    """Write the arrays of ``trainer``'s optimizer state to ``path`` (``mx.nd.save``,
    atomically) and return the JSON part (counters and layout)."""
    ready_trainer(trainer)
    names = _names(trainer)
    updater = trainer._updaters[0]  # every device holds the same state (MXNet saves this one too)
    arrays: Dict[str, mx.nd.NDArray] = {}
    layout: Dict[str, Union[str, int]] = {}
    for index, state in updater.states.items():
        name = names[index]
        if state is None:
            layout[name] = "none"
        elif isinstance(state, mx.nd.NDArray):
            layout[name] = "array"
            arrays[name] = state.as_in_context(mx.cpu())
        else:
            layout[name] = len(state)
            for position, part in enumerate(state):
                arrays[f"{name}/{position}"] = part.as_in_context(mx.cpu())
    write_params(path, arrays)
    optimizer = trainer._optimizer
    counts = {str(device): {names[index]: count for index, count in per_index.items()}
              for device, per_index in optimizer._all_index_update_counts.items()}
    return {"format": FORMAT, "num_update": optimizer.num_update, "update_counts": counts, "layout": layout}


def _read_header(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(8)
    except OSError as err:
        raise CheckpointError(f"{path}: optimizer state unreadable ({err.strerror or type(err).__name__})") from None


def check_optimizer_file(path: str, trust_pickle: bool) -> bool:
    """Check the format of a ``.states`` file without reading it; True if it is pickled.

    Raises :class:`CheckpointError` for a pickled file unless ``trust_pickle``, and for a
    file of neither format.
    """
    header = _read_header(path)
    if header == ND_LIST_MAGIC:
        return False
    if header[:1] == b"\x80":
        if not trust_pickle:
            raise CheckpointError(f"{path}: optimizer state in the pickled format, which runs code when read; "
                                  f"pass {TRUST_FLAG} only if you trust this file")
        return True
    raise CheckpointError(f"{path}: not an optimizer state file (neither mx.nd.save nor pickled format)")


def load_optimizer_state(trainer: gluon.Trainer, path: str, saved: Optional[Dict[str, Any]],
                         trust_pickle: bool = False) -> None:
    """Restore :func:`save_optimizer_state`'s state into ``trainer`` (the parameters must
    be those that were saved, by name and shape).

    ``saved`` is the JSON part; None (or a pickled ``path``) means the old pickled format,
    read only with ``trust_pickle``. Raises :class:`CheckpointError` (one line) for a
    truncated, corrupt or mismatched file.
    """
    pickled = check_optimizer_file(path, trust_pickle)
    ready_trainer(trainer)
    if pickled or saved is None:
        if not pickled:
            raise CheckpointError(f"{path}: the training state has no optimizer counters for this mx.nd.save file")
        _load_pickled(trainer, path)
        return
    try:
        arrays = mx.nd.load(path)
    except mx.base.MXNetError:
        raise CheckpointError(f"{path}: optimizer state truncated or corrupt (mx.nd.load failed)") from None
    if isinstance(arrays, list) and not arrays:  # a state without arrays (momentum 0)
        arrays = {}
    if not isinstance(arrays, dict):
        raise CheckpointError(f"{path}: optimizer state has unnamed arrays")
    check_finite(arrays, path)
    states = _states_by_index(trainer, path, arrays, saved.get("layout", {}))
    for position, updater in enumerate(trainer._updaters):
        updater.states = {index: _on_context(state, trainer._params[index].list_ctx()[position])
                          for index, state in states.items()}
        updater.states_synced = dict.fromkeys(updater.states, True)
    index_of = {name: index for index, name in enumerate(_names(trainer))}
    optimizer = trainer._optimizer
    optimizer.num_update = int(saved["num_update"])
    optimizer._all_index_update_counts = {
        int(device): {index_of[name]: int(count) for name, count in per_name.items() if name in index_of}
        for device, per_name in saved["update_counts"].items()} or {0: {}}
    first_device = min(optimizer._all_index_update_counts)
    optimizer._index_update_count = optimizer._all_index_update_counts[first_device]


def _states_by_index(trainer: gluon.Trainer, path: str, arrays: Dict[str, mx.nd.NDArray],
                     layout: Dict[str, Union[str, int]]) -> Dict[int, State]:
    names = _names(trainer)
    unknown = sorted(set(layout) - set(names))
    if unknown:
        raise CheckpointError(f"{path}: optimizer state of {len(unknown)} parameter(s) this network does not "
                              f"have, e.g. {unknown[0]}")
    states: Dict[int, State] = {}
    for index, name in enumerate(names):
        kind = layout.get(name)
        if kind is None:
            continue
        keys = [name] if kind == "array" else [] if kind == "none" else [f"{name}/{i}" for i in range(int(kind))]
        missing = [k for k in keys if k not in arrays]
        if missing:
            raise CheckpointError(f"{path}: optimizer state array {missing[0]} missing (truncated or corrupt file)")
        shape = trainer._params[index].shape
        wrong = [k for k in keys if arrays[k].shape != shape]
        if wrong:
            raise CheckpointError(f"{path}: optimizer state {wrong[0]} has shape {arrays[wrong[0]].shape}, "
                                  f"parameter {name} has {shape}")
        states[index] = None if kind == "none" else arrays[name] if kind == "array" else tuple(arrays[k] for k in keys)
    return states


def _on_context(state: State, context: mx.Context) -> State:
    """A copy of ``state`` on ``context`` (every device updates its own copy)."""
    if state is None:
        return None
    if isinstance(state, mx.nd.NDArray):
        return state.copyto(context)
    return tuple(part.copyto(context) for part in state)


def _load_pickled(trainer: gluon.Trainer, path: str) -> None:
    """MXNet's own ``Trainer.load_states`` (unpickles: only for trusted files)."""
    try:
        trainer.load_states(path)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError,
            IndexError, KeyError) as err:
        raise CheckpointError(f"{path}: pickled optimizer state truncated or corrupt "
                              f"({type(err).__name__})") from None
