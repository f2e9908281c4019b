"""Atomic writes: all or nothing, and the permissions of a normally created file."""
import os
import stat

import pytest

from tusimple_duc.io.atomic import atomic_open, atomic_write_json, atomic_write_text, atomic_write_with


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_permissions_match_a_plain_file(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_write_text(str(tmp_path / "atomic.txt"), "x")
    atomic_write_with(str(tmp_path / "written.bin"), lambda p: open(p, "wb").write(b"x"))
    assert _mode(tmp_path / "atomic.txt") == _mode(plain) == _mode(tmp_path / "written.bin")


def test_failure_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    atomic_write_json(str(target), {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_open(str(target), "w") as handle:
            handle.write("{ half")
            raise RuntimeError("killed")
    with pytest.raises(ValueError):
        atomic_write_with(str(target), lambda p: (open(p, "w").write("junk"), (_ for _ in ()).throw(ValueError())))
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert sorted(os.listdir(tmp_path)) == ["metrics.json"]


def test_writer_gets_the_extension(tmp_path):
    seen = []
    atomic_write_with(str(tmp_path / "x.png"), lambda p: (seen.append(p), open(p, "wb").close()))
    assert seen[0].endswith(".png") and os.path.dirname(seen[0]) == str(tmp_path)


def test_image_writer_round_trips_and_names_the_file_on_failure(tmp_path):
    import cv2
    import numpy as np

    from tusimple_duc.io.atomic import atomic_write_image

    grey16 = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
    atomic_write_image(str(tmp_path / "ids.png"), grey16)
    assert (cv2.imread(str(tmp_path / "ids.png"), cv2.IMREAD_UNCHANGED) == grey16).all()
    with pytest.raises(OSError, match="bad.png: OpenCV could not write the image"):
        atomic_write_image(str(tmp_path / "bad.png"), np.zeros((2, 2, 7), dtype=np.float64))
    assert not (tmp_path / "bad.png").exists()
