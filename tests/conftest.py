"""Fixtures shared by the test folders."""
import os

import pytest

from tusimple_duc.data.lists import ListEntry, write_list
from tusimple_duc.synthetic.cityscapes import write_synthetic_cityscapes


@pytest.fixture(scope="session")
def synthetic_val_split():
    """``make(root, image_size, seed)``: writes ``root/cityscapes`` (2 synthetic val images in the
    Cityscapes layout) and ``root/val.lst`` (the released test-list format, paths relative to the
    dataset root) and returns the dataset summary."""
    def make(root, image_size, seed):
        summary = write_synthetic_cityscapes(str(root / "cityscapes"), {"val": 2}, image_size=image_size, seed=seed)
        write_list(str(root / "val.lst"), [
            ListEntry(index, os.path.relpath(frame.image, summary.root),
                      os.path.relpath(frame.files["gtFine_labelIds"], summary.root))
            for index, frame in enumerate(summary.frames["val"])])
        return summary
    return make


@pytest.fixture(scope="session")
def tiny_checkpoint():
    """``make(prefix, epoch, image_size, mx_seed)``: a Xavier-initialised ``tiny_duc_hdc`` saved as
    checkpoint ``epoch`` of ``prefix``; returns the network."""
    def make(prefix, epoch, image_size, mx_seed):
        import mxnet as mx

        from tusimple_duc.io.checkpoint import save_checkpoint
        from tusimple_duc.models.presets import get_model

        mx.random.seed(mx_seed)
        net = get_model("tiny_duc_hdc")
        net.initialize(mx.init.Xavier(factor_type="in", magnitude=2.34))
        net(mx.nd.zeros((1, 3) + tuple(image_size)))
        save_checkpoint(net, str(prefix), epoch)
        return net
    return make


@pytest.fixture(scope="session")
def warm_python(tmp_path_factory):
    """Path of an executable that runs ``SCRIPT ARGS`` as ``python SCRIPT ARGS`` in a child forked
    from an interpreter that has imported MXNet already (``tests/warm_python.py``): for tests
    that start the project's scripts many times (one OpenMP thread, PYTHONPATH = the repository)."""
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("warm_python")
    socket_path = str(folder / "socket")
    here = os.path.dirname(os.path.abspath(__file__))
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.path.dirname(here))
    server = subprocess.Popen([sys.executable, os.path.join(here, "warm_python.py"), "serve", socket_path],
                              stdout=subprocess.PIPE, text=True, env=environment)
    assert server.stdout.readline().strip() == "ready"
    sys.path.insert(0, here)
    from warm_python import write_launcher

    yield write_launcher(str(folder), socket_path)
    server.terminate()
    server.wait(timeout=30)
