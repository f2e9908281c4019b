"""tools/gpu_selftest.py in its --cpu-contexts mode with a tiny network."""
import os
import sys

import mxnet as mx

from compat_helpers import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import gpu_selftest  # noqa: E402

ARGS = ["--cpu-contexts", "2", "--preset", "tiny_duc_hdc", "--size", "32", "--repeats", "1"]


def test_cpu_contexts_mode_passes_every_check(capsys):
    assert gpu_selftest.main(ARGS) == 0
    lines = capsys.readouterr().out.splitlines()
    status = {line[:44].strip(): line[44:].split()[0] for line in lines[2:-1]}
    assert status == {
        "runtime": "PASS", "forward device 0 vs cpu": "PASS", "update 1 device vs Module": "PASS",
        "update 2 devices, kvstore local vs Module": "PASS", "update 2 devices, kvstore device vs Module": "PASS",
        "update 2 devices, kvstore nccl vs Module": "SKIP", "throughput": "PASS",
    }
    assert lines[-1] == "all checks passed"


def test_an_update_that_differs_from_the_module_fails(monkeypatch, capsys):
    solver = dict(gpu_selftest.SOLVER)
    original = gpu_selftest.engine_update

    def double_lr(*args):
        monkeypatch.setitem(gpu_selftest.SOLVER, "lr", solver["lr"] * 2)
        try:
            return original(*args)
        finally:
            monkeypatch.setitem(gpu_selftest.SOLVER, "lr", solver["lr"])

    monkeypatch.setattr(gpu_selftest, "engine_update", double_lr)
    assert gpu_selftest.main(ARGS) == 1
    out = capsys.readouterr().out
    assert "update 1 device vs Module                   FAIL" in out
    assert out.splitlines()[-1].startswith("FAIL: update 1 device vs Module, update 2 devices, kvstore local")


def test_no_gpu_is_a_clear_message_and_exit_2(monkeypatch, capsys):
    monkeypatch.setattr(mx.context, "num_gpus", lambda: 0)
    assert gpu_selftest.main(["--preset", "tiny_duc_hdc"]) == 2
    assert capsys.readouterr().err.startswith("error: no GPU visible to MXNet")
