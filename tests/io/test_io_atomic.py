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
    with pytest.raises(OSError, match="bad.png: OpenCV could not encode the image"):
        atomic_write_image(str(tmp_path / "bad.png"), np.zeros((2, 2, 7), dtype=np.float64))
    assert not (tmp_path / "bad.png").exists()


def _record_fsyncs(monkeypatch):
    """Monkeypatch ``os.fsync`` to record what each synced descriptor was: ('file' | 'dir', path)."""
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        path = os.readlink(f"/proc/self/fd/{fd}")
        synced.append(("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file", path))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    return synced


@pytest.mark.parametrize("write", [
    lambda path: atomic_write_with(path, lambda tmp: open(tmp, "wb").write(b"data")),
    lambda path: atomic_write_text(path, "data"),
    lambda path: atomic_write_json(path, {"a": 1}),
], ids=["atomic_write_with", "atomic_write_text", "atomic_write_json"])
def test_every_write_fsyncs_the_data_then_the_folder(tmp_path, monkeypatch, write):
    synced = _record_fsyncs(monkeypatch)
    target = str(tmp_path / "run-0001.states")
    write(target)
    kinds = [kind for kind, _ in synced]
    assert kinds == ["file", "dir"], synced
    data_file, folder = synced[0][1], synced[1][1]
    assert os.path.dirname(data_file) == str(tmp_path) and os.path.basename(data_file).startswith(".run-0001")
    assert folder == str(tmp_path)


def test_temporary_names_are_recognised(tmp_path):
    from tusimple_duc.io.atomic import temporary_target

    seen = []
    atomic_write_with(str(tmp_path / "run-0003.state.json"), lambda tmp: (seen.append(tmp), open(tmp, "w").close()))
    with atomic_open(str(tmp_path / "run-train.cfg"), "w"):
        seen += [name for name in os.listdir(tmp_path) if name.startswith(".run-train.cfg.")]
    assert [temporary_target(os.path.basename(p)) for p in seen] == ["run-0003.state.json", "run-train.cfg"]
    assert temporary_target("run-0003.params") is None
    assert temporary_target(".run-0003.params.tmp") is None  # not mkstemp's 8-character random part


def test_ensure_writable_dir_creates_and_refuses_files(tmp_path):
    from tusimple_duc.errors import DUCError, OutputError
    from tusimple_duc.io.atomic import ensure_writable_dir

    ensure_writable_dir(str(tmp_path / "a" / "b"), "[model] model_dir")
    assert (tmp_path / "a" / "b").is_dir() and os.listdir(tmp_path / "a" / "b") == []
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(OutputError) as err:
        ensure_writable_dir(str(blocker), "[model] model_dir")
    assert str(err.value) == f"[model] model_dir {blocker}: is a file, not a folder"
    with pytest.raises(OutputError) as err:
        ensure_writable_dir(str(blocker / "sub" / "dir"), "--out")
    assert str(err.value) == f"--out {blocker / 'sub' / 'dir'}: is under {blocker}, which is a file, not a folder"
    assert issubclass(OutputError, DUCError)


@pytest.fixture
def immutable_dir(tmp_path):
    """A real folder nobody (root included) can create files in: ``chattr +i``."""
    import subprocess

    folder = tmp_path / "immutable"
    folder.mkdir()
    subprocess.run(["chattr", "+i", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_ensure_writable_dir_refuses_an_immutable_folder(immutable_dir):
    from tusimple_duc.errors import OutputError
    from tusimple_duc.io.atomic import ensure_writable_dir

    with pytest.raises(OutputError) as err:
        ensure_writable_dir(str(immutable_dir), "[model] result_dir")
    assert str(err.value) == f"[model] result_dir {immutable_dir}: cannot write there (Operation not permitted)"
    with pytest.raises(OutputError, match="cannot write there"):
        ensure_writable_dir(str(immutable_dir / "new"), "[model] result_dir")
