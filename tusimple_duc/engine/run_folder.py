"""The folder of a run: checked before any work, one run per checkpoint prefix.

:func:`prepare_run_folder` runs on the chief worker before the network is built or data
read:

* ``model_dir`` must be a folder this process can write (``io.atomic.ensure_writable_dir``);
* temporary files a killed checkpoint write left behind (``.<prefix>-....tmp...``, this
  prefix only) are removed;
* a fresh run (no ``--resume``) refuses a prefix that holds checkpoints of an earlier run,
  unless ``overwrite``: then that run's files (checkpoints, config, logs) are moved into
  ``<model_dir>/replaced-<YYYYmmdd-HHMMSS>/``; nothing is deleted. Files of an earlier run
  without any checkpoint (killed in its first epoch) are moved there too, with a note.
  The checkpoint a run fine-tunes from (``load_model_prefix`` = this prefix, epochs up to
  ``load_epoch``, and the symbol file, as in the released example config) belongs to the
  run and stays.

:func:`check_resume` (every worker, before any work) refuses to continue a checkpoint whose
saved config differs from the current one except in :data:`RESUMABLE_KEYS`, and a pickled
optimizer state unless trusted.
"""
from __future__ import annotations

import configparser
import dataclasses
import os
import re
import time
from typing import Dict, List, Optional, Tuple

from tusimple_duc.config import TrainConfig, format_value
from tusimple_duc.engine.optimizer_state import check_optimizer_file
from tusimple_duc.engine.state import TrainingState, latest_checkpoint, optimizer_path, state_path
from tusimple_duc.errors import CheckpointError
from tusimple_duc.io.atomic import ensure_writable_dir, temporary_target

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

_RUN_FILE = re.compile(r"^(?:(?P<epoch>\d{4,})\.(?:params|states|state\.json)"
                       r"|symbol\.json|train\.cfg|train\.log|metrics\.jsonl|summary\.txt)$")


def config_record(config: TrainConfig) -> Dict[str, Dict[str, str]]:
    """``{section: {key: value text}}`` of every key (defaults included), as ``-train.cfg`` has them."""
    record: Dict[str, Dict[str, str]] = {}
    for section in dataclasses.fields(config):
        if section.name != "source":
            values = getattr(config, section.name)
            record[section.name] = {item.name: format_value(getattr(values, item.name))
                                    for item in dataclasses.fields(values)}
    return record


def _run_files(prefix: str) -> List[Tuple[str, Optional[int]]]:
    """``(file name, epoch or None)`` of every run file of ``prefix`` in its folder."""
    folder, base = os.path.split(prefix)
    found = []
    for name in sorted(os.listdir(folder or ".")):
        if name.startswith(base + "-"):
            match = _RUN_FILE.match(name[len(base) + 1:])
            if match and os.path.isfile(os.path.join(folder, name)):
                found.append((name, int(match.group("epoch")) if match.group("epoch") else None))
    return found


def remove_stale_temporaries(prefix: str) -> List[str]:
    """Delete the temporary files of interrupted writes of ``prefix``'s run files; returns their names."""
    folder, base = os.path.split(prefix)
    removed = []
    for name in sorted(os.listdir(folder or ".")):
        target = temporary_target(name)
        if target and target.startswith(base + "-") and _RUN_FILE.match(target[len(base) + 1:]):
            os.remove(os.path.join(folder, name))
            removed.append(name)
    return removed


def _fine_tuning_epoch(config: TrainConfig, prefix: str) -> Optional[int]:
    """``load_epoch`` when the run fine-tunes from a checkpoint of its own prefix."""
    model = config.model
    if not model.load_model_prefix:
        return None
    source = os.path.join(model.load_model_dir or "", model.load_model_prefix)
    return model.load_epoch if os.path.abspath(source) == os.path.abspath(prefix) else None


def _move_aside(folder: str, names: List[str]) -> str:
    """Move ``names`` of ``folder`` into a new ``replaced-<timestamp>`` folder; returns it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, suffix = os.path.join(folder, f"replaced-{stamp}"), 1
    while os.path.exists(target):
        suffix += 1
        target = os.path.join(folder, f"replaced-{stamp}-{suffix}")
    os.makedirs(target)
    for name in names:
        os.replace(os.path.join(folder, name), os.path.join(target, name))
    return target


def prepare_run_folder(config: TrainConfig, prefix: str, resume: bool, overwrite: bool) -> List[str]:
    """Check and tidy ``<model_dir>`` for this run (module docstring); returns notes to log.

    Raises :class:`OutputError` (folder not writable) or :class:`CheckpointError` (a fresh
    run into an earlier run's checkpoints without ``overwrite``).
    """
    folder = os.path.dirname(prefix) or "."
    ensure_writable_dir(folder, "[model] model_dir")
    notes = [f"removed {name} (left by an interrupted write)" for name in remove_stale_temporaries(prefix)]
    if resume:
        return notes
    source_epoch = _fine_tuning_epoch(config, prefix)
    own = [(name, epoch) for name, epoch in _run_files(prefix)
           if source_epoch is None or not (name.endswith("-symbol.json") or (epoch is not None and epoch <= source_epoch))]
    epochs = sorted({epoch for _, epoch in own if epoch is not None})
    if epochs and not overwrite:
        raise CheckpointError(
            f"{prefix}-{epochs[-1]:04d}.*: {folder} holds checkpoints of an earlier run of "
            f"{os.path.basename(prefix)} (epochs {epochs[0]}..{epochs[-1]}); continue it with --resume, or start "
            f"again with --overwrite (moves its files into {folder}/replaced-<time>/)")
    if own:
        moved_to = _move_aside(folder, [name for name, _ in own])
        what = "checkpoints and logs" if epochs else "files (no checkpoint)"
        notes.append(f"moved {len(own)} {what} of an earlier run of {os.path.basename(prefix)} to {moved_to}")
    return notes


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
    """The config a checkpoint was written with: its state (format 2) or ``-train.cfg`` (format 1)."""
    if state.config is not None:
        return state.config
    path = prefix + "-train.cfg"
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, configparser.Error, UnicodeDecodeError) as err:
        raise CheckpointError(f"{state_path(prefix, epoch)}: no saved config to compare with "
                              f"({path}: {type(err).__name__})") from None
    return {name: dict(parser[name]) for name in parser.sections()}


def check_resume(config: TrainConfig, prefix: str, trust_pickled_states: bool) -> Tuple[int, TrainingState]:
    """The newest complete checkpoint of ``prefix``, after checking that it belongs to this
    config and that its optimizer state may be read. Raises :class:`CheckpointError`."""
    epoch, state = latest_checkpoint(prefix)
    changed = _differences(_saved_config(prefix, epoch, state), config_record(config))
    if changed:
        allowed = ", ".join(f"{s}.{k}" for s, k in RESUMABLE_KEYS + SAME_COUNT_KEYS)
        raise CheckpointError(
            f"{state_path(prefix, epoch)}: checkpoint {epoch} was written with another config: "
            f"{'; '.join(changed[:5])}{' ...' if len(changed) > 5 else ''} (--resume allows changes of {allowed} "
            f"only; start a new run with another model_dir or save_model_prefix, or with --overwrite)")
    check_optimizer_file(optimizer_path(prefix, epoch), trust_pickled_states)
    return epoch, state
