"""Memory of whole-image inference: test.py's pipeline costs the network's own forward plus a
few bytes per pixel, not several (L, H, W) float copies (peak RSS measured in a fresh process)."""
import json
import os
import subprocess
import sys

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "memory_probe.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIG = (960, 1600)  # 1.5 megapixels (at 0.9 the unbanded pipeline's excess hid in freed memory)
#: bytes per pixel the pipeline may add to the network's forward (the image, labels, max
#: probability, outputs and their encoding; measured -4 to 35); one (19, H, W) float32 map alone
#: is 76, and the unbanded pipeline added 110 to 134
PIPELINE_BYTES_PER_PIXEL = 64


def test_pipeline_peak_is_the_forward_plus_a_few_bytes_per_pixel(tmp_path):
    result = subprocess.run([sys.executable, PROBE, str(tmp_path), str(BIG[0]), str(BIG[1])],
                            capture_output=True, text=True, cwd=ROOT,
                            env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT,
                                     MXNET_CPU_MEM_POOL_TYPE="Unpooled"))
    assert result.returncode == 0, result.stderr
    peaks = json.loads(result.stdout.strip().splitlines()[-1])
    pixels = BIG[0] * BIG[1]
    assert peaks["forward"] > 12 * pixels  # at least the float32 input: the probe measured something
    assert peaks["pipeline"] <= peaks["forward"] + PIPELINE_BYTES_PER_PIXEL * pixels, (
        f"pipeline peak +{peaks['pipeline'] / 2**20:.0f} MiB, forward alone +{peaks['forward'] / 2**20:.0f} MiB: "
        f"{(peaks['pipeline'] - peaks['forward']) / pixels:.0f} bytes per pixel beyond the network")
