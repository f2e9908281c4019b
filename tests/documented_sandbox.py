"""The folder the documented commands run in, as the docs assume it (tests/test_documented_commands_run.py).

``Sandbox(root)`` holds links to the repository's scripts (``train.py``, ``test.py``, ``tools/``,
``train/*.py``, ``test/*.py``; a script's ``ROOT`` is the sandbox, so its default outputs land there),
copies of ``configs/`` and ``data_lists/`` (commands write lists there), synthetic datasets in
the official layouts at 64x128 (``data/cityscapes``, ``data/synthetic``, ``data/kitti``,
``data/voc``), a released-format checkpoint with random values of the ``tiny_duc_hdc`` preset
(``models/ResNet_DUC_HDC_CityScapes-symbol.json`` + ``-0020.params``) and a few photos
(``photos/``, ``my_photos/``, ``test/photos/``). Commands run through the warm interpreter
(tests/warm_python.py: MXNet imported once), each in its own process; a command run twice runs once.
"""
import glob
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = (64, 128)
LINKED = ("train.py", "test.py", "tools")
ENTRY_FOLDERS = ("train", "test")  # the original's entry points (cd train && python train_model.py ...)
COPIED = ("configs", "data_lists")
TIMEOUT = 300


@dataclass(frozen=True)
class Ran:
    """What a command did: ``argv`` (after globbing), ``cwd``, exit ``status``, its output."""
    argv: Tuple[str, ...]
    cwd: str
    status: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        return f"{' '.join(self.argv)} (in {self.cwd}) exited {self.status}:\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"


class Sandbox:
    """A repository-like folder with data; :meth:`run` runs a command line in it."""

    def __init__(self, root: str, python: str):
        """``python``: the interpreter the commands' ``python`` stands for (the ``warm_python`` fixture)."""
        self.root = root
        self.python = python
        self._ran: Dict[Tuple[Tuple[str, ...], str], Ran] = {}
        for name in LINKED:
            os.symlink(os.path.join(ROOT, name), os.path.join(root, name))
        for folder in ENTRY_FOLDERS:  # real folders: commands run from them write beside their scripts
            os.makedirs(os.path.join(root, folder))
            for name in os.listdir(os.path.join(ROOT, folder)):
                if name.endswith(".py"):
                    os.symlink(os.path.join(ROOT, folder, name), os.path.join(root, folder, name))
        for name in COPIED:
            shutil.copytree(os.path.join(ROOT, name), os.path.join(root, name))
        self._write_data()
        self.env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT, MPLBACKEND="Agg")

    def _write_data(self) -> None:
        from tusimple_duc.synthetic.cityscapes import write_synthetic_cityscapes
        from tusimple_duc.synthetic.kitti_road import write_synthetic_kitti_road
        from tusimple_duc.synthetic.voc import write_synthetic_voc

        city = write_synthetic_cityscapes(self.path("data/cityscapes"), {"train": 2, "val": 2}, image_size=SIZE, seed=1)
        write_synthetic_cityscapes(self.path("data/synthetic"), {"train": 2, "val": 2}, image_size=SIZE, seed=2)
        write_synthetic_kitti_road(self.path("data/kitti"), n_train=2, n_test=1, image_size=SIZE, seed=3)
        write_synthetic_voc(self.path("data/voc"), n_images=3, n_aug_only=1, image_size=SIZE, seed=4)
        for folder in ("photos", "my_photos", "test/photos"):
            os.makedirs(self.path(folder))
            for frame in city.frames["val"]:
                shutil.copy(frame.image, self.path(folder))
        self._write_released_format_checkpoint()

    def _write_released_format_checkpoint(self) -> None:
        import mxnet as mx

        from tusimple_duc.io.checkpoint import save_checkpoint
        from tusimple_duc.models.presets import get_model

        mx.random.seed(7)
        net = get_model("tiny_duc_hdc")
        net.initialize(mx.init.Xavier(factor_type="in", magnitude=2.34))
        net(mx.nd.zeros((1, 3) + SIZE))
        save_checkpoint(net, self.path("models/ResNet_DUC_HDC_CityScapes"), 20)

    def path(self, relative: str) -> str:
        return os.path.join(self.root, relative)

    def newest(self, pattern: str) -> str:
        """The newest match of a glob under the sandbox (run folders sort by their time stamp)."""
        found = sorted(glob.glob(self.path(pattern)))
        assert found, f"nothing matches {pattern} in {self.root}"
        return found[-1]

    def run(self, command: str, cwd: str = ".") -> Ran:
        """Run ``python SCRIPT ARGS...`` (shell words; ``*`` globbed as the shell would) in ``cwd``."""
        argv: List[str] = []
        folder = self.path(cwd)
        for word in shlex.split(command):
            matches = sorted(glob.glob(os.path.join(folder, word))) if "*" in word else []
            argv += [os.path.relpath(m, folder) for m in matches] or [word]
        key = (tuple(argv), cwd)
        if key not in self._ran:
            self._ran[key] = self._run(argv, folder)
        return self._ran[key]

    def _run(self, argv: List[str], folder: str) -> Ran:
        done = subprocess.run([self.python, *argv[1:]], cwd=folder, env=self.env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, errors="replace", timeout=TIMEOUT)
        return Ran(tuple(argv), folder, done.returncode, done.stdout, done.stderr)
