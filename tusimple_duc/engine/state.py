"""Training-state checkpoints: everything besides the weights that a resumed run needs.

Every ``checkpoint_interval`` epochs the chief worker writes into the run folder
(``<model_dir>/<save_model_prefix>/<YYYY_MM_DD_HH:MM:SS>/``, ``run_dirs.py``), in this
order, each file atomically (``tusimple_duc/io/atomic.py``)::

    <prefix>-symbol.json            released format (tusimple_duc.io)
    <prefix>-%04d.params            released format: arg:/aux: arrays
    <prefix>-%04d.states            optimizer arrays (SGD momentum per parameter name),
                                    mx.nd.save format: no pickle
    <prefix>-%04d.state.json        epoch, update count, RNG states, digests, optimizer
                                    counters, the run's config

The ``.state.json`` file is written last and marks the checkpoint complete: a run killed
while writing leaves at most a stray ``.params``/``.states`` of an incomplete checkpoint,
and ``--resume`` picks the newest epoch whose ``.state.json`` exists. ``%04d`` is the
number of epochs completed (MXNet's convention: resuming at 20 first saves 0021).
It records two digests: ``params_sha1`` over the parameter values
(:func:`parameter_digest`) and ``params_file_sha1`` over the ``.params`` file's bytes
(``io/checksum.py``), checked whenever the checkpoint is loaded.

RNG state: Python's ``random`` and NumPy's global generator are saved and restored. MXNet
exposes no state getter, so the trainer re-seeds MXNet at the start of every epoch from
``(seed, epoch, rank)`` (``epoch_seed``); the data order and augmentation are a function of
``(seed, epoch)`` in the data iterator. Resuming at an epoch boundary therefore reproduces
the uninterrupted run.

Format 1 (earlier checkpoints) had no optimizer counters and config, and a pickled
``.states`` file (read only with ``--trust-pickled-states``, ``optimizer_state.py``).
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from tusimple_duc.errors import CheckpointError
from tusimple_duc.io.atomic import atomic_write_json
from tusimple_duc.io.checkpoint import params_path
from tusimple_duc.io.checksum import state_path

STATE_FORMAT = 2
#: formats :func:`load_training_state` reads
READABLE_FORMATS = (1, 2)


@dataclass
class TrainingState:
    """Position of a run at a checkpoint.

    Attributes
    ----------
    epoch : epochs completed (the checkpoint number)
    updates : parameter updates applied since the start of the run (the lr position)
    updates_per_epoch : batches per epoch of one worker when the checkpoint was written
    begin_epoch : epoch the run started from (``load_epoch`` when fine-tuning, else 0)
    seed : ``[env] seed`` of the run
    num_workers : workers of the run (the data shard layout)
    params_sha1 : digest of the saved parameters (see :func:`parameter_digest`)
    rng : ``{"python": ..., "numpy": ...}`` generator states (JSON form)
    optimizer : optimizer counters and layout (``optimizer_state.save_optimizer_state``);
        None in format 1
    config : the run's resolved config, ``{section: {key: value text}}`` (``run_folder``);
        None in format 1
    params_file_sha1 : SHA-1 of the ``.params`` file's bytes (``io/checksum.py``); None in
        checkpoints of earlier versions
    """

    epoch: int
    updates: int
    updates_per_epoch: int
    begin_epoch: int
    seed: int
    num_workers: int
    params_sha1: str
    rng: Dict[str, Any] = field(default_factory=dict)
    optimizer: Optional[Dict[str, Any]] = None
    config: Optional[Dict[str, Dict[str, str]]] = None
    params_file_sha1: Optional[str] = None
    format: int = STATE_FORMAT


def optimizer_path(prefix: str, epoch: int) -> str:
    """The optimizer ``.states`` of checkpoint ``epoch``."""
    return f"{prefix}-{epoch:04d}.states"


def capture_rng() -> Dict[str, Any]:
    """JSON-able states of Python's ``random`` and NumPy's global generator."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(internal), gauss],
            "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}


def restore_rng(rng: Dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """Seed of MXNet's generator for ``epoch`` on worker ``rank`` (31 bits)."""
    digest = hashlib.sha256(f"{seed}/{epoch}/{rank}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def parameter_digest(arrays: Dict[str, np.ndarray]) -> str:
    """SHA-1 over names, shapes and float bytes of ``arrays`` in name order.

    Equal digests on two workers mean bit-identical parameters.
    """
    hasher = hashlib.sha1()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        hasher.update(f"{name}:{value.dtype}:{value.shape};".encode())
        hasher.update(value.tobytes())
    return hasher.hexdigest()


def save_training_state(prefix: str, state: TrainingState,
                        save_optimizer: Callable[[str], Dict[str, Any]]) -> None:
    """Write the optimizer state (``save_optimizer(path)`` writes the arrays atomically and
    returns the counters, stored in ``state.optimizer``) then the ``.state.json`` marker."""
    state.optimizer = save_optimizer(optimizer_path(prefix, state.epoch))
    atomic_write_json(state_path(prefix, state.epoch), asdict(state))


def _epochs_with(prefix: str, suffix: str) -> List[int]:
    """Epochs ``N`` with a file ``<prefix>-NNNN<suffix>``, ascending."""
    pattern = re.compile(re.escape(os.path.basename(prefix)) + r"-(\d{4,})" + re.escape(suffix) + "$")
    return sorted(int(match.group(1)) for path in glob.glob(glob.escape(prefix) + "-*" + suffix)
                  if (match := pattern.match(os.path.basename(path))))


def complete_checkpoints(prefix: str) -> List[int]:
    """Epochs with a complete checkpoint (``.state.json``, ``.params``, ``.states``), ascending."""
    return [epoch for epoch in _epochs_with(prefix, ".state.json")
            if os.path.isfile(params_path(prefix, epoch)) and os.path.isfile(optimizer_path(prefix, epoch))]


def incomplete_checkpoints(prefix: str) -> List[int]:
    """Epochs with a ``.params`` but no ``.state.json`` (a write interrupted by a kill or a
    full disk; never resumed from), ascending."""
    return [epoch for epoch in _epochs_with(prefix, ".params") if not os.path.isfile(state_path(prefix, epoch))]


def load_training_state(prefix: str, epoch: int) -> TrainingState:
    """Read the ``.state.json`` of checkpoint ``epoch`` (:class:`CheckpointError` if unusable)."""
    path = state_path(prefix, epoch)
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: training state not found") from None
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable training state ({err})") from None
    if not isinstance(raw, dict) or raw.get("format") not in READABLE_FORMATS:
        found = raw.get("format") if isinstance(raw, dict) else None
        raise CheckpointError(f"{path}: training-state format {found!r}, expected one of {READABLE_FORMATS}")
    try:
        return TrainingState(**raw)
    except TypeError as err:
        raise CheckpointError(f"{path}: malformed training state ({err})") from None


def latest_checkpoint(prefix: str) -> Tuple[int, TrainingState]:
    """The newest complete checkpoint of ``prefix`` (:class:`CheckpointError` if none)."""
    epochs = complete_checkpoints(prefix)
    if not epochs:
        raise CheckpointError(f"{prefix}-*.state.json: no complete checkpoint to resume from in "
                              f"{os.path.dirname(prefix) or '.'} (run without --resume first)")
    return epochs[-1], load_training_state(prefix, epochs[-1])

