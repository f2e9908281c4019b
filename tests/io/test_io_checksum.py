"""io/checksum.py: the .params digest a run records, checked on load."""
import hashlib
import json

import mxnet as mx
import pytest

from tusimple_duc.io.checksum import (PARAMS_FILE_SHA1_KEY, ChecksumError, recorded_params_sha1, state_path,
                                      verify_checkpoint_params)
from tusimple_duc.io.paramfile import write_params


def test_recorded_digest_is_checked(tmp_path):
    params, state = str(tmp_path / "run-0003.params"), state_path(str(tmp_path / "run"), 3)
    assert state == str(tmp_path / "run-0003.state.json")
    write_params(params, {"arg:w": mx.nd.arange(64).reshape((8, 8))})
    assert verify_checkpoint_params(params, state) is False  # no state file: a released or foreign checkpoint
    with open(state, "w") as handle:
        json.dump({"epoch": 3}, handle)
    assert recorded_params_sha1(state) is None and verify_checkpoint_params(params, state) is False
    expected = hashlib.sha1(open(params, "rb").read()).hexdigest()
    with open(state, "w") as handle:
        json.dump({PARAMS_FILE_SHA1_KEY: expected}, handle)
    assert verify_checkpoint_params(params, state) is True
    with open(params, "r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)[0]
        handle.seek(100)
        handle.write(bytes([byte ^ 1]))
    found = hashlib.sha1(open(params, "rb").read()).hexdigest()
    with pytest.raises(ChecksumError) as err:
        verify_checkpoint_params(params, state)
    assert str(err.value) == (f"{params}: checksum mismatch (expected sha1 {expected}, found {found}): the file "
                              f"changed after it was written (a flipped bit, a partial copy)")


def test_state_field_name_is_the_one_the_engine_writes():
    import dataclasses

    from tusimple_duc.engine.state import TrainingState

    assert PARAMS_FILE_SHA1_KEY in {field.name for field in dataclasses.fields(TrainingState)}
