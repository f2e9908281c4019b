"""SHA-1 checksums of checkpoint files: recorded when a run writes them, verified when read.

A training run records in each checkpoint's ``<prefix>-%04d.state.json`` the SHA-1 of the
``<prefix>-%04d.params`` bytes it wrote (key ``params_file_sha1``, ``engine/state.py``).
:func:`verify_checkpoint_params` recomputes it whenever the project loads a checkpoint that
has such a record (``test.py``, export, fine-tuning, ``--resume``): a flipped bit or a
partial copy is one :class:`ChecksumError` line naming the file, the expected and the found
digest. A checkpoint without a record (the released files, other tools' files) is read
unverified.
"""
from __future__ import annotations

import hashlib
import json
from typing import Optional

from tusimple_duc.errors import CheckpointError

#: key of the ``.params`` file digest in a ``.state.json``
PARAMS_FILE_SHA1_KEY = "params_file_sha1"
_CHUNK = 1 << 20


class ChecksumError(CheckpointError):
    """A checkpoint file's bytes differ from the digest recorded when it was written."""


def state_path(prefix: str, epoch: int) -> str:
    """The ``.state.json`` of checkpoint ``epoch``: marks it complete and records its digest."""
    return f"{prefix}-{int(epoch):04d}.state.json"


def file_sha1(path: str) -> str:
    """SHA-1 (hex) of the bytes of ``path``."""
    hasher = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def recorded_params_sha1(state_file: str) -> Optional[str]:
    """The ``.params`` digest recorded in a checkpoint's ``.state.json``; None when there is
    no such file or it records none (an unreadable state file is resume's concern)."""
    try:
        with open(state_file, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    value = record.get(PARAMS_FILE_SHA1_KEY) if isinstance(record, dict) else None
    return value if isinstance(value, str) else None


def check_file_sha1(path: str, expected: str) -> None:
    """Raise :class:`ChecksumError` unless ``path``'s SHA-1 is ``expected``."""
    found = file_sha1(path)
    if found != expected:
        raise ChecksumError(f"{path}: checksum mismatch (expected sha1 {expected}, found {found}): the file "
                            f"changed after it was written (a flipped bit, a partial copy)")


def verify_checkpoint_params(params_file: str, state_file: str) -> bool:
    """Check ``params_file`` against the digest its checkpoint's ``state_file`` records; True
    if one was recorded (and matched), False if none. Raises :class:`ChecksumError` on a mismatch."""
    expected = recorded_params_sha1(state_file)
    if expected is None:
        return False
    check_file_sha1(params_file, expected)
    return True
