"""test.py when things go wrong: SIGTERM mid-write, temporaries of a killed run, a full disk
(a real tmpfs), non-finite weights and outputs, a hostile symbol JSON."""
import os
import runpy
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from tusimple_duc.config import load_test_config
from tusimple_duc.errors import DataError, OutputError
from tusimple_duc.io.atomic import temporary_target
from tusimple_duc.models.presets import get_model
from tusimple_duc.pipelines.segment import run_test

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "test", "test_full_image.cfg")
SIZE = (64, 96)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, synthetic_val_split, tiny_checkpoint):
    """(root, network): two synthetic Cityscapes val images and a tiny checkpoint (epoch 1)."""
    root = tmp_path_factory.mktemp("robust")
    synthetic_val_split(root, SIZE, seed=2)
    return root, tiny_checkpoint(root / "models" / "tiny", 1, SIZE, mx_seed=4)


def _overrides(root, result_dir, model_dir=None, network=True):
    return [f"data.image_list={root / 'val.lst'}", f"data.test_img_dir={root / 'cityscapes'}",
            f"data.gt_dir={root / 'cityscapes'}", f"model.model_dir={model_dir or root / 'models'}",
            "model.model_prefix=tiny", "model.model_epoch=1", "model.gpu=-1", f"model.result_dir={result_dir}",
            f"data.test_shape={SIZE[0]},{SIZE[1]}", f"data.result_shape={SIZE[0]},{SIZE[1]}",
            "inference.cpu_fast=False", *(["network.preset=tiny_duc_hdc"] if network else [])]


def _run_test_py(args, capsys):
    """test.py in this process: (exit status, stderr)."""
    saved = sys.argv
    sys.argv = [os.path.join(ROOT, "test.py"), CONFIG, "--quiet", *args]
    try:
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_path(os.path.join(ROOT, "test.py"), run_name="__main__")
    finally:
        sys.argv = saved
    return exit_info.value.code, capsys.readouterr().err


def _sets(overrides):
    return [item for override in overrides for item in ("--set", override)]


def _temporaries(folder):
    return [os.path.join(parent, name) for parent, _, names in os.walk(folder) for name in names
            if temporary_target(name)]


# SIGTERM arrives while the first output file is being written (after its data is written, before
# the rename): the signal is real, its moment is fixed by sending it from os.fsync.
_KILLED_MID_WRITE = """
import os, runpy, signal, sys
real_fsync = os.fsync
def fsync_then_terminate(fd):
    real_fsync(fd)
    if os.path.isfile(os.readlink(f"/proc/self/fd/{fd}")):
        os.kill(os.getpid(), signal.SIGTERM)
os.fsync = fsync_then_terminate
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_sigterm_mid_write_removes_the_temporary_and_exits_143(checkpoint, tmp_path):
    root, _ = checkpoint
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", _KILLED_MID_WRITE, os.path.join(ROOT, "test.py"), CONFIG,
                             "--quiet", *_sets(_overrides(root, out))],
                            capture_output=True, text=True, cwd=ROOT,
                            env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT))
    assert result.returncode == 143, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "terminated (SIGTERM)"
    assert out.is_dir() and _temporaries(out) == []


def test_a_rerun_removes_the_temporaries_a_killed_run_left(checkpoint, tmp_path, caplog):
    root, net = checkpoint
    out = tmp_path / "out"
    (out / "score").mkdir(parents=True)
    stale = out / "score" / ".frankfurt_000000_000001_gtFine_labelIds.k2j4x_a9.tmp.png"
    stale.write_bytes(b"half a png")
    caplog.set_level("INFO")
    run_test(load_test_config(CONFIG, _overrides(root, out)), show_progress=False, net=net)
    assert not stale.exists() and _temporaries(out) == []
    assert f"removed {stale} (left by an interrupted write)" in caplog.text
    assert len(os.listdir(out / "score")) == 2


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB tmpfs at ``tmp_path/full`` filled up but for a few KiB (unmounted afterwards)."""
    mount_point = tmp_path / "full"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], check=True)
    try:
        with open(mount_point / "filler", "wb") as filler:
            try:
                filler.write(b"\0" * (1 << 20))
            except OSError:
                pass
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_a_full_disk_is_one_line_naming_the_file_and_no_space(checkpoint, full_disk, capsys):
    root, _ = checkpoint
    status, stderr = _run_test_py(_sets(_overrides(root, full_disk / "out")), capsys)
    assert status == 2, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {full_disk / 'out'}/") and last.endswith(": cannot write (no space left on device)")
    assert "OpenCV" not in stderr and "Traceback" not in stderr
    assert _temporaries(full_disk) == []


def test_a_non_finite_network_output_stops_the_run_naming_the_image(checkpoint, tmp_path):
    root, _ = checkpoint
    mx.random.seed(4)
    net = get_model("tiny_duc_hdc")
    net.initialize(mx.init.Constant(1e20))  # finite weights whose activations overflow to infinity
    net(mx.nd.zeros((1, 3) + SIZE))
    image = tmp_path / "street.png"
    image.write_bytes((root / "cityscapes").joinpath(*_first_image(root)).read_bytes())
    config = load_test_config(CONFIG, _overrides(root, tmp_path / "out"))
    with pytest.raises(DataError, match=rf"^{image}: inference: the network's output holds \d+ non-finite"):
        run_test(config, images=[str(image)], show_progress=False, net=net)


def _first_image(root):
    with open(root / "val.lst") as handle:
        return handle.readline().split("\t")[1].split("/")


def test_non_finite_weights_are_refused_by_test_py(checkpoint, tmp_path, capsys):
    root, net = checkpoint
    arrays = mx.nd.load(str(root / "models" / "tiny-0001.params"))
    key = sorted(arrays)[3]
    arrays[key][0] = float("nan")
    (tmp_path / "models").mkdir()
    mx.nd.save(str(tmp_path / "models" / "tiny-0001.params"), arrays)
    status, stderr = _run_test_py(_sets(_overrides(root, tmp_path / "out", tmp_path / "models")), capsys)
    assert status == 2
    assert stderr.strip().splitlines()[-1].startswith(
        f"error: {tmp_path / 'models' / 'tiny-0001.params'}: array {key} holds ")
    assert not (tmp_path / "out" / "score").exists()


def test_a_deeply_nested_symbol_json_is_one_line(checkpoint, tmp_path, capsys):
    root, _ = checkpoint
    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny-0001.params").write_bytes((root / "models" / "tiny-0001.params").read_bytes())
    (models / "tiny-symbol.json").write_text("[" * 100000 + "]" * 100000)
    status, stderr = _run_test_py(_sets(_overrides(root, tmp_path / "out", models, network=False)), capsys)
    assert status == 2 and "RecursionError" not in stderr
    assert stderr.strip().splitlines()[-1] == (f"error: {models / 'tiny-symbol.json'}: symbol JSON nested 100000 "
                                               f"levels deep, more than the limit of 32; not a network's symbol file")


@pytest.mark.parametrize("dataset", ["cityscapes", "kitti", "voc"])
def test_scores_are_the_same_when_the_probability_map_is_not_kept(dataset, tmp_path):
    from tusimple_duc.data.png import read_png
    from tusimple_duc.inference.predictor import Predictor
    from tusimple_duc.pipelines.dataset_outputs import outputs_for

    probe = outputs_for(dataset, 2 if dataset == "kitti" else 21 if dataset == "voc" else 19)
    mx.random.seed(1)
    net = get_model("tiny_duc_hdc", num_classes=probe.dataset.num_classes)
    net.initialize(mx.init.Xavier(factor_type="in", magnitude=2.34))
    image = np.random.RandomState(0).randint(0, 256, (40, 56, 3)).astype(np.uint8)
    full = Predictor(net).predict(image)
    compact = Predictor(net).predict(image, keep_probabilities=probe.dataset.scores_probabilities)
    assert (compact.probabilities is None) == (dataset != "kitti")
    probe.write_score(str(tmp_path / "full.png"), full)
    probe.write_score(str(tmp_path / "compact.png"), compact)
    modes = ("L", "P")
    np.testing.assert_array_equal(read_png(str(tmp_path / "compact.png"), modes, "score"),
                                  read_png(str(tmp_path / "full.png"), modes, "score"))
