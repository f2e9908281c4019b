"""The folder of a run: its own, new or resumed, locked for the run's life; resume checks.

:func:`open_run_folder` runs before the network is built or data read:

* a fresh run gets a new folder ``<model_dir>/<save_model_prefix>/<YYYY_MM_DD_HH:MM:SS>/``
  (``run_dirs.py``, where the original solver writes): it never writes next to earlier
  runs, the released files or the checkpoint it fine-tunes from;
* ``--resume`` continues the newest run folder of the prefix, or the folder it is given
  (``--resume PATH``; a folder of files ``<save_model_prefix>-NNNN.*``, such as a
  ``model_dir`` of earlier versions of this project); never the ``load_model_dir`` the run
  fine-tunes from;
* the chief worker locks the folder (``run_lock.py``: a second live process is one error
  line naming it; ``kill -9`` releases the lock) and removes the temporary files that a
  kill during a write left in it.

:func:`check_resume` (every worker, before any work) picks the newest complete checkpoint,
checks its ``.params`` digest (a mismatch names the newest intact checkpoint), notes the
incomplete checkpoints it passes over, and refuses a checkpoint whose saved config differs
from the current one except in :data:`RESUMABLE_KEYS`, and a pickled optimizer state unless
trusted.
"""
from __future__ import annotations

import configparser
import dataclasses
import os
from typing import Dict, List, Optional, Tuple, Union

from tusimple_duc.config import TrainConfig, format_value
from tusimple_duc.engine.optimizer_state import check_optimizer_file
from tusimple_duc.engine.run_dirs import config_copy_path, create_run_dir, newest_run_dir, run_dirs, run_prefix
from tusimple_duc.engine.run_lock import RunLock, acquire_run_lock
from tusimple_duc.engine.state import (TrainingState, complete_checkpoints, incomplete_checkpoints,
                                       latest_checkpoint, optimizer_path)
from tusimple_duc.errors import CheckpointError
from tusimple_duc.io.atomic import temporary_target
from tusimple_duc.io.checkpoint import params_path
from tusimple_duc.io.checksum import ChecksumError, state_path, verify_checkpoint_params

#: keys that may differ between a checkpoint's config and the run that resumes it: they
#: change neither the data, the network nor the optimisation of the epochs already run
#: (``num_epochs`` extends or shortens the run; with the poly policy it also stretches the
#: remaining schedule).
RESUMABLE_KEYS: Tuple[Tuple[str, str], ...] = (
    ("model", "num_epochs"), ("model", "checkpoint_interval"), ("model", "log_interval"),
    ("model", "model_dir"), ("data", "num_workers"), ("env", "multi_thread"), ("misc", "draw_network"),
)
#: keys that may differ when the number of their items stays the same (other GPU ids)
SAME_COUNT_KEYS: Tuple[Tuple[str, str], ...] = (("env", "gpus"),)


def config_record(config: TrainConfig) -> Dict[str, Dict[str, str]]:
    """``{section: {key: value text}}`` of every key (defaults included), as the config copy has them."""
    record: Dict[str, Dict[str, str]] = {}
    for section in dataclasses.fields(config):
        if section.name != "source":
            values = getattr(config, section.name)
            record[section.name] = {item.name: format_value(getattr(values, item.name))
                                    for item in dataclasses.fields(values)}
    return record


def remove_stale_temporaries(run_dir: str) -> List[str]:
    """Delete the temporary files of interrupted atomic writes in ``run_dir`` (the folder is
    the run's own); returns their names."""
    removed = []
    for name in sorted(os.listdir(run_dir)):
        if temporary_target(name) and os.path.isfile(os.path.join(run_dir, name)):
            os.remove(os.path.join(run_dir, name))
            removed.append(name)
    return removed


@dataclasses.dataclass
class RunFolder:
    """The folder a run writes: ``run_dir`` (None on a non-chief worker of a fresh run, which
    writes nothing), the checkpoint ``prefix`` in it, the held ``lock`` (chief only) and
    ``notes`` to log."""

    run_dir: Optional[str]
    prefix: Optional[str]
    lock: Optional[RunLock]
    notes: List[str]

    def release(self) -> None:
        """Release the lock (process exit releases it too)."""
        if self.lock is not None:
            self.lock.release()


def resume_dir(config: TrainConfig, resume: Union[bool, str]) -> str:
    """The run folder ``--resume`` continues: ``resume`` if it is a path, else the newest run
    folder of the prefix. Raises :class:`CheckpointError` (no such folder, the fine-tuning
    source folder, a newest folder without a checkpoint while an older one has some)."""
    model = config.model
    if isinstance(resume, str):
        run_dir = resume
        if not os.path.isdir(run_dir):
            raise CheckpointError(f"--resume {run_dir}: no such run folder")
    else:
        run_dir = newest_run_dir(model.model_dir, model.save_model_prefix)
        if not complete_checkpoints(run_prefix(run_dir, model.save_model_prefix)):
            older = [d for d in run_dirs(model.model_dir, model.save_model_prefix)
                     if complete_checkpoints(run_prefix(d, model.save_model_prefix))]
            if older:
                raise CheckpointError(f"{run_dir}: the newest run of {model.save_model_prefix} has no complete "
                                      f"checkpoint; the newest run with one is {older[-1]}: "
                                      f"--resume {older[-1]}")
    if model.load_model_dir is not None and os.path.isdir(model.load_model_dir) \
            and os.path.samefile(run_dir, model.load_model_dir):
        raise CheckpointError(f"--resume {run_dir}: this is [model] load_model_dir, the folder the run "
                              f"fine-tunes from; a run never writes there (start a fresh run instead)")
    return run_dir


def open_run_folder(config: TrainConfig, resume: Union[bool, str], chief: bool) -> RunFolder:
    """The run's folder (module docstring): created or found, locked and tidied on the chief.

    Raises :class:`OutputError` (``model_dir`` not writable), ``RunFolderInUseError`` (another
    live process trains there) or :class:`CheckpointError` (nothing to resume).
    """
    model = config.model
    if resume:
        run_dir: Optional[str] = resume_dir(config, resume)
    else:
        run_dir = create_run_dir(model.model_dir, model.save_model_prefix) if chief else None
    if run_dir is None:
        return RunFolder(None, None, None, [])
    lock = acquire_run_lock(run_dir) if chief else None
    notes = [f"removed {name} (left by an interrupted write)"
             for name in (remove_stale_temporaries(run_dir) if chief else [])]
    return RunFolder(run_dir, run_prefix(run_dir, model.save_model_prefix), lock, notes)


def _differences(saved: Dict[str, Dict[str, str]], current: Dict[str, Dict[str, str]]) -> List[str]:
    defaults = config_record(TrainConfig())
    changed = []
    for section, values in current.items():
        for name, value in values.items():
            before = saved.get(section, {}).get(name, defaults[section][name])
            if before == value or (section, name) in RESUMABLE_KEYS:
                continue
            if (section, name) in SAME_COUNT_KEYS and len(before.split(",")) == len(value.split(",")):
                continue
            changed.append(f"[{section}] {name} {before} -> {value}")
    return changed


def _saved_config(prefix: str, epoch: int, state: TrainingState) -> Dict[str, Dict[str, str]]:
    """The config a checkpoint was written with: its state (format 2) or, for format 1 (earlier
    versions, which wrote a flat ``model_dir``), ``<prefix>-train.cfg`` or the run folder's copy."""
    if state.config is not None:
        return state.config
    copies = [prefix + "-train.cfg", config_copy_path(os.path.dirname(prefix) or ".")]
    path = next((copy for copy in copies if os.path.isfile(copy)), copies[0])
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, configparser.Error, UnicodeDecodeError) as err:
        raise CheckpointError(f"{state_path(prefix, epoch)}: no saved config to compare with "
                              f"({path}: {type(err).__name__})") from None
    return {name: dict(parser[name]) for name in parser.sections()}


def _newest_intact(prefix: str, below: int) -> str:
    """The ``.params`` of the newest complete checkpoint before ``below`` whose bytes match
    its recorded digest (or that records none), or ``none``."""
    for epoch in reversed([e for e in complete_checkpoints(prefix) if e < below]):
        try:
            verify_checkpoint_params(params_path(prefix, epoch), state_path(prefix, epoch))
        except ChecksumError:
            continue
        return params_path(prefix, epoch)
    return "none"


def check_resume(config: TrainConfig, prefix: str,
                 trust_pickled_states: bool) -> Tuple[int, TrainingState, List[str]]:
    """The newest complete checkpoint of ``prefix`` (epoch, state, notes to log), after
    checking its ``.params`` digest, that it belongs to this config and that its optimizer
    state may be read. Raises :class:`CheckpointError`."""
    epoch, state = latest_checkpoint(prefix)
    try:
        verify_checkpoint_params(params_path(prefix, epoch), state_path(prefix, epoch))
    except ChecksumError as err:
        raise ChecksumError(f"{err}; newest intact checkpoint: {_newest_intact(prefix, epoch)} (move the newer "
                            f"checkpoint files away to resume from it)") from None
    changed = _differences(_saved_config(prefix, epoch, state), config_record(config))
    if changed:
        allowed = ", ".join(f"{s}.{k}" for s, k in RESUMABLE_KEYS + SAME_COUNT_KEYS)
        raise CheckpointError(
            f"{state_path(prefix, epoch)}: checkpoint {epoch} was written with another config: "
            f"{'; '.join(changed[:5])}{' ...' if len(changed) > 5 else ''} (--resume allows changes of {allowed} "
            f"only; start a new run instead)")
    check_optimizer_file(optimizer_path(prefix, epoch), trust_pickled_states)
    notes = [f"ignoring incomplete checkpoint {later} ({params_path(prefix, later)} without its "
             f"{os.path.basename(state_path(prefix, later))})" for later in incomplete_checkpoints(prefix)
             if later > epoch]
    return epoch, state, notes
