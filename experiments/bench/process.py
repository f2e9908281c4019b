"""Worker processes of the benchmark, seen from the suite."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from typing import Callable, Dict, List, Optional

import numpy as np

from experiments.bench.variants import VariantConfig
from experiments.bench.protocol import REPLY_PREFIX
from tusimple_duc.errors import DUCError

WORKER_MODULE = "experiments.bench.worker"


class BenchError(DUCError):
    """A worker failed, or the variants' outputs disagree."""


class Worker:
    """One variant in its own process (``python -m experiments.bench.worker``, or ``command``: a
    peer worker, :mod:`experiments.bench.peers`); stderr goes to ``log_path``. ``to_pixels``
    rearranges the probabilities the worker saves into the pixel layout (None: they are)."""

    def __init__(self, label: str, config: VariantConfig, log_path: str,
                 env: Optional[Dict[str, str]] = None, command: Optional[List[str]] = None,
                 to_pixels: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> None:
        self.label = label
        self.log_path = log_path
        self.to_pixels = to_pixels
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(command or [sys.executable, "-m", WORKER_MODULE, json.dumps(asdict(config))],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._log, text=True, env=env)
        self.ready: Dict[str, object] = {}

    def saved_probabilities(self, path: str) -> np.ndarray:
        """The probabilities the worker saved to ``path``, in the pixel layout."""
        saved = np.load(path)
        return self.to_pixels(saved) if self.to_pixels else saved

    def _reply(self) -> Dict[str, object]:
        for line in self.process.stdout:
            if line.startswith(REPLY_PREFIX):
                message = json.loads(line[len(REPLY_PREFIX):])
                if "error" in message:
                    raise BenchError(f"{self.label}: {message['error']} (log: {self.log_path})")
                return message
        raise BenchError(f"{self.label}: worker exited with status {self.process.wait()} "
                         f"(log: {self.log_path})")

    def wait_ready(self) -> Dict[str, object]:
        self.ready = self._reply()
        return self.ready

    def request(self, **command) -> Dict[str, object]:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._reply()

    def run(self, save: Optional[str] = None) -> float:
        return float(self.request(op="run", save=save)["seconds"])

    def close(self) -> Dict[str, object]:
        memory = self.request(op="exit")
        self.process.wait()
        self._log.close()
        return memory

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()
