"""The README's deployment program, run as its text stands, on an export of tools/export_model.py:
its labels equal test.py's ``score/`` labels on the same images; ``test.py --images`` writes into
a folder of its own."""
import importlib.util
import os
import re
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from tusimple_duc.errors import OutputError
from tusimple_duc.io.checkpoint import save_checkpoint
from tusimple_duc.models.presets import get_model
from tusimple_duc.pipelines.images_folder import images_output_dir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_script(name):
    """The module of a script of the repository (``test.py``, ``tools/export_model.py``)."""
    spec = importlib.util.spec_from_file_location(os.path.basename(name)[:-3] + "_script", os.path.join(ROOT, name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def readme_block(marker: str) -> str:
    """The fenced code block between ``<!-- marker -->`` and ``<!-- /marker -->`` of README.md."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    block = re.search(rf"<!-- {marker} -->\n```[a-z]*\n(.*?)```\n<!-- /{marker} -->", text, re.S)
    assert block, f"README.md has no {marker} block"
    return block.group(1)


def smooth_images(folder, count, size, seed):
    """``count`` RGB PNGs of ``size`` (rows, cols): smooth colour fields, so the network's labels vary."""
    rng = np.random.RandomState(seed)
    os.makedirs(folder, exist_ok=True)
    for index in range(count):
        coarse = rng.uniform(0, 255, (size[0] // 16, size[1] // 16, 3)).astype(np.float32)
        image = np.asarray(Image.fromarray(coarse.astype(np.uint8)).resize(size[::-1], Image.BILINEAR))
        Image.fromarray(image).save(os.path.join(folder, f"frame{index}.png"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    mx.random.seed(3)
    net = get_model("tiny_duc_hdc")
    net.initialize(mx.init.Xavier(factor_type="in", magnitude=2.34))
    net(mx.nd.zeros((1, 3, 64, 64)))
    save_checkpoint(net, str(root / "models" / "tiny"), 7)
    return root


def test_the_readme_program_gives_test_py_labels(checkpoint, tmp_path):
    models = checkpoint / "models"
    smooth_images(str(tmp_path / "images"), 3, (64, 128), seed=5)
    config = tmp_path / "test.cfg"
    config.write_text("[data]\nimage_list=not_used_with_images.lst\n")
    sets = []
    for item in (f"model.model_dir={models}", "model.model_prefix=tiny", "model.model_epoch=7", "model.gpu=-1",
                 f"model.result_dir={tmp_path / 'results'}", "network.preset=tiny_duc_hdc"):
        sets += ["--set", item]
    test_py = load_script("test.py")
    assert test_py.main([str(config), "--quiet", "--images", str(tmp_path / "images"),
                         "--out", str(tmp_path / "test_py"), *sets]) == 0
    assert not (tmp_path / "results").exists()  # nothing written into the config's result_dir

    onnx_path = str(tmp_path / "duc.onnx")
    assert load_script("tools/export_model.py").main(["--prefix", str(models / "tiny"), "--epoch", "7", "--out",
                                           str(tmp_path / "duc"), "--preset", "tiny_duc_hdc", "--shape", "64,64",
                                           "--onnx", onnx_path, "--onnx-output", "labels"]) == 0
    program = tmp_path / "segment_onnx.py"
    program.write_text(readme_block("deploy-program"))
    copies = tmp_path / "copies"
    smooth_images(str(copies), 3, (64, 128), seed=5)
    images = sorted(str(copies / name) for name in os.listdir(copies))
    done = subprocess.run([sys.executable, str(program), onnx_path, *images], capture_output=True, text=True,
                          cwd=str(tmp_path), env={**os.environ, "PYTHONPATH": ""}, timeout=300)
    assert done.returncode == 0, done.stderr
    for index in range(3):
        ours = np.asarray(Image.open(copies / f"frame{index}_labelIds.png"))
        theirs = np.asarray(Image.open(tmp_path / "test_py" / "score" / f"frame{index}.png"))
        assert ours.shape == theirs.shape == (64, 128)
        assert len(np.unique(theirs)) >= 2  # the labels vary: the comparison can fail
        assert (ours == theirs).mean() >= 0.999


def test_images_runs_get_new_folders_beside_the_results_and_refuse_a_used_one(tmp_path):
    results = str(tmp_path / "results" / "duc")
    first = images_output_dir(results, now=0)
    second = images_output_dir(results, now=0)
    assert first == str(tmp_path / "results" / "duc-images-19700101-000000")
    assert second == first + "-2" and os.path.isdir(second)
    assert not os.path.exists(results)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "metrics.json").write_text("{}")
    with pytest.raises(OutputError, match=r"--out .*used: the folder already holds files"):
        images_output_dir(results, str(tmp_path / "used"))
    assert images_output_dir(results, str(tmp_path / "new" / "folder")) == str(tmp_path / "new" / "folder")
