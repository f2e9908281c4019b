"""What each documented command must have produced (tests/test_documented_commands_run.py's ``check``
of an entry): ``check(ran, sandbox)`` asserts on the command's output and the files it wrote."""
import json
import os
import sys
from typing import Callable, Tuple

import numpy as np
from PIL import Image

from documented_sandbox import Ran, Sandbox

Check = Callable[[Ran, Sandbox], None]


def _load_json(sandbox: Sandbox, relative: str) -> dict:
    with open(sandbox.path(relative), encoding="utf-8") as f:
        return json.load(f)


def _read_png(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def _png_count(sandbox: Sandbox, folder: str) -> int:
    names = [n for n in os.listdir(sandbox.path(folder)) if n.endswith(".png")]
    for name in names:
        assert _read_png(os.path.join(sandbox.path(folder), name)).size > 0
    return len(names)


def demo_outputs(ran: Ran, sandbox: Sandbox) -> None:
    metrics = _load_json(sandbox, "demo_output/results/metrics.json")
    assert 0.0 <= metrics["summary"]["mIoU"] <= 1.0
    assert "mIoU on the synthetic val split" in ran.stdout
    assert _png_count(sandbox, "demo_output/results/score") == 2 and os.path.isfile(sandbox.path("demo_output/mosaic.png"))


def no_gpu_message(ran: Ran, sandbox: Sandbox) -> None:
    lines = ran.stderr.strip().splitlines()
    assert lines[-1].startswith("error: no GPU visible to MXNet"), ran.stderr


def selftest_table(ran: Ran, sandbox: Sandbox) -> None:
    for check in ("runtime", "forward", "update"):
        assert any(line.split()[:1] == [check] and "PASS" in line for line in ran.stdout.splitlines()), ran.stdout
    assert "FAIL" not in ran.stdout


def bench_table(ran: Ran, sandbox: Sandbox) -> None:
    assert "gluon" in ran.stdout and "64x128" in ran.stdout, ran.stdout


def bench_json(name: str) -> Check:
    def check(ran: Ran, sandbox: Sandbox) -> None:
        bench_table(ran, sandbox)
        assert _load_json(sandbox, name)
    return check


def precision_table(ran: Ran, sandbox: Sandbox) -> None:
    assert "int8" in ran.stdout and "mIoU" in ran.stdout, ran.stdout


def checkpoint_of(folder_pattern: str, prefix: str, epoch: int) -> Check:
    def check(ran: Ran, sandbox: Sandbox) -> None:
        run_dir = sandbox.newest(folder_pattern)
        assert os.path.isfile(os.path.join(run_dir, f"{prefix}-{epoch:04d}.params")), os.listdir(run_dir)
        assert os.path.isfile(os.path.join(run_dir, f"{prefix}-{epoch:04d}.state.json"))
    return check


def list_results(folder: str, images: int = 2, scored: bool = True) -> Check:
    def check(ran: Ran, sandbox: Sandbox) -> None:
        assert _png_count(sandbox, os.path.join(folder, "score")) == images
        if scored:
            metrics = _load_json(sandbox, os.path.join(folder, "metrics.json"))
            assert 0.0 <= metrics["summary"]["mIoU"] <= 1.0
    return check


def image_results(folder: str) -> Check:
    def check(ran: Ran, sandbox: Sandbox) -> None:
        files = [f for _, _, names in os.walk(sandbox.path(folder)) for f in names if f.endswith(".png")]
        assert len(files) >= 2, files
    return check


def lists_of(folder: str, names: Tuple[str, ...]) -> Check:
    def check(ran: Ran, sandbox: Sandbox) -> None:
        for name in names:
            with open(sandbox.path(os.path.join(folder, name)), encoding="utf-8") as f:
                assert [line for line in f if line.strip()], f"{folder}/{name} is empty"
    return check


def png_file(relative: str) -> Check:
    def check(ran: Ran, sandbox: Sandbox) -> None:
        image = _read_png(sandbox.path(relative))
        assert image.ndim == 3 and image.shape[0] > 100
    return check


def stdout_has(*texts: str) -> Check:
    def check(ran: Ran, sandbox: Sandbox) -> None:
        for text in texts:
            assert text in ran.stdout, ran.stdout
    return check


def metrics_json(relative: str) -> Check:
    def check(ran: Ran, sandbox: Sandbox) -> None:
        metrics = _load_json(sandbox, relative)
        assert 0.0 <= metrics["summary"]["mIoU"] <= 1.0
        assert "mIoU" in ran.stdout or "IoU" in ran.stdout
    return check


def exported(prefix: str) -> Check:
    def check(ran: Ran, sandbox: Sandbox) -> None:
        import mxnet as mx

        module = mx.mod.Module.load(sandbox.path(prefix), 0)
        module.bind(data_shapes=[("data", (1, 3, 64, 128))], for_training=False)
        module.forward(mx.io.DataBatch([mx.nd.zeros((1, 3, 64, 128))]), is_train=False)
        probabilities = module.get_outputs()[0].asnumpy()
        assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    return check


def symbols_written(ran: Ran, sandbox: Sandbox) -> None:
    with open(sandbox.path("symbols/tiny_duc_hdc-symbol.json"), encoding="utf-8") as f:
        ours = f.read()
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "symbols",
                           "tiny_duc_hdc-symbol.json"), encoding="utf-8") as f:
        assert ours == f.read()


def preflight_missing(ran: Ran, sandbox: Sandbox) -> None:
    missing = [line for line in ran.stdout.splitlines() if line.startswith("preflight: missing: ")]
    assert any("GPU" in line for line in missing) and any("resnet101_v1" in line for line in missing), ran.stdout


def claims_report(ran: Ran, sandbox: Sandbox) -> None:
    with open(sandbox.path("docs/claims/REPORT.md"), encoding="utf-8") as f:
        assert "gridding" in f.read().lower()


def paper_rows(ran: Ran, sandbox: Sandbox) -> None:
    row = [line for line in ran.stdout.splitlines() if "table1_row1_baseline_ds8" in line]
    assert row and "-" in row[0], ran.stdout


def dataset_files(ran: Ran, sandbox: Sandbox) -> None:
    assert _png_count(sandbox, "data/generated/leftImg8bit/train/aachen") >= 1


def worker_lines(ran: Ran, sandbox: Sandbox) -> None:
    assert "[worker 0]" in ran.stdout + ran.stderr and "[worker 1]" in ran.stdout + ran.stderr
    checkpoint_of("models/dist_sync/tiny_duc_hdc/2*/", "tiny_duc_hdc", 1)(ran, sandbox)


def bench_eval_report(relative: str) -> Check:
    def check(ran: Ran, sandbox: Sandbox) -> None:
        report = _load_json(sandbox, relative)
        assert report["images"] == 2 and report["largest_score_difference"] <= 1e-9 and report["speedup"] > 0
    return check


def report_of(relative: str, system: str) -> Check:
    def check(ran: Ran, sandbox: Sandbox) -> None:
        with open(sandbox.path(relative), encoding="utf-8") as f:
            assert system in f.read()
    return check


def checkpoint_file(relative: str) -> Check:
    def check(ran: Ran, sandbox: Sandbox) -> None:
        import mxnet as mx

        params = mx.nd.load(sandbox.path(relative))
        assert len(params) > 100 and all(np.isfinite(v.asnumpy()).all() for v in list(params.values())[:5])
    return check


def write_gluoncv_pspnet(sandbox: Sandbox) -> None:
    """GluonCV's PSPNet (ResNet-101, auxiliary head, 19 classes) with Xavier values, saved as GluonCV does."""
    import mxnet as mx

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "io"))
    from io_helpers import import_gluoncv

    net = import_gluoncv().model_zoo.PSPNet(19, backbone="resnet101", aux=True, pretrained_base=False, crop_size=64)
    net.initialize(mx.init.Xavier(), force_reinit=True)
    net(mx.nd.zeros((1, 3, 64, 64)))
    net.save_parameters(sandbox.path("models/psp_resnet101_citys.params"))
