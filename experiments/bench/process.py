"""Worker processes of the benchmark, seen from the suite."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from typing import Dict, Optional

from experiments.bench.variants import VariantConfig
from experiments.bench.worker import REPLY_PREFIX
from tusimple_duc.errors import DUCError

WORKER_MODULE = "experiments.bench.worker"


class BenchError(DUCError):
    """A worker failed, or the variants' outputs disagree."""


class Worker:
    """One variant in its own process (``python -m experiments.bench.worker``); stderr goes to ``log_path``."""

    def __init__(self, label: str, config: VariantConfig, log_path: str,
                 env: Optional[Dict[str, str]] = None) -> None:
        self.label = label
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.process = subprocess.Popen([sys.executable, "-m", WORKER_MODULE, json.dumps(asdict(config))],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._log, text=True, env=env)
        self.ready: Dict[str, object] = {}

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
