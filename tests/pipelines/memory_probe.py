"""Peak memory of test.py's pipeline, run in its own process by test_segment_memory.py.

``MXNET_CPU_MEM_POOL_TYPE=Unpooled python memory_probe.py FOLDER HEIGHT WIDTH [PRESET [STAGES]]``
builds the network of PRESET (default ``tiny_duc_hdc``; seeded random weights), writes a
HEIGHT x WIDTH image and prints one JSON line ``{"forward": bytes, "pipeline": bytes,
"rss_before": bytes}``: each stage's peak RSS increase (VmHWM after, reset by
``/proc/self/clear_refs``, minus VmRSS before; ``rss_before``: the pipeline's) of the STAGES
(default ``forward,pipeline``; ``pipeline`` alone measures it in a process that ran nothing else)

* ``forward``: the network alone, as the pipeline runs it (its CPU forward, on the image's
  mean-subtracted float32 input), then released (unpooled MXNet memory goes back to the system);
* ``pipeline``: ``run_test`` on the image (``--images``: every output at the image's size).
"""
import gc
import json
import os
import sys

import tusimple_duc  # noqa: F401  (before mxnet)
import cv2
import mxnet as mx
import numpy as np

from tusimple_duc.config import load_test_config
from tusimple_duc.inference.windows import network_input, padded_shape
from tusimple_duc.io.checkpoint import save_checkpoint
from tusimple_duc.models.presets import get_model
from tusimple_duc.pipelines.segment import load_network, run_test, select_contexts, select_forward

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def status_bytes(key: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process, bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def main(folder: str, height: int, width: int, preset: str = "tiny_duc_hdc",
         stages: str = "forward,pipeline") -> None:
    mx.random.seed(3)
    net = get_model(preset)
    net.initialize(mx.init.Xavier(factor_type="in", magnitude=2.34))
    net(mx.nd.zeros((1, 3, 64, 64)))
    save_checkpoint(net, os.path.join(folder, "models", "tiny"), 1)
    rows, cols = np.mgrid[0:height, 0:width]
    image = np.stack([(cols * 7) % 256, (rows * 3) % 256, ((rows + cols) // 5) % 256], axis=2).astype(np.uint8)
    del rows, cols
    image_path = os.path.join(folder, "big.png")
    cv2.imwrite(image_path, image[:, :, ::-1])
    config = load_test_config(os.path.join(ROOT, "configs", "test", "test_full_image.cfg"), [
        f"model.model_dir={folder}/models", "model.model_prefix=tiny", "model.model_epoch=1", "model.gpu=-1",
        f"model.result_dir={folder}/out", f"network.preset={preset}"])
    contexts = select_contexts(-1)
    loaded = load_network(config, contexts)
    peaks = {}
    if "forward" in stages:
        forward = select_forward(config, loaded, contexts, [], True)
        reset_peak()
        before = status_bytes("VmRSS")
        data = network_input(image, config.data.rgb_mean, padded_shape(image.shape[:2], loaded.output_stride, None))
        forward(data[None])
        peaks["forward"] = status_bytes("VmHWM") - before
        del forward, data
    del image
    gc.collect()
    reset_peak()
    before = status_bytes("VmRSS")
    run_test(config, images=[image_path], show_progress=False, net=loaded)
    peaks.update(pipeline=status_bytes("VmHWM") - before, rss_before=before)
    print(json.dumps(peaks))


def reset_peak() -> None:
    """Peak RSS (VmHWM) := current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:6])
