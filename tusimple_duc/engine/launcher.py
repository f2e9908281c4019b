"""Run a parameter-server job on one machine: scheduler + servers + N workers on loopback.

MXNet's ``dist_sync`` kvstore is a ps-lite job of three roles, configured by the
``DMLC_*`` environment: one scheduler (at ``DMLC_PS_ROOT_URI:DMLC_PS_ROOT_PORT``),
``DMLC_NUM_SERVER`` servers that sum the gradients, and ``DMLC_NUM_WORKER`` workers that
train. A scheduler or server is any Python process that imports ``mxnet`` with
``DMLC_ROLE`` set accordingly: the import runs the server loop and exits.

:func:`launch_local` starts all of them as child processes on one host, streams their
output line by line with a role prefix (``[worker 1] ...``), and kills every one of them
(process groups, so data-loading children too) as soon as a worker fails, or on Ctrl-C.
Worker ranks inside MXNet (``kv.rank``) are assigned by the scheduler in connection
order, so ``[worker i]`` is the launch index, not necessarily the rank.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, TextIO

#: Command of a scheduler or server process (importing mxnet runs the ps-lite node).
PS_NODE_COMMAND = (sys.executable, "-c", "import tusimple_duc, mxnet")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if a TCP socket can bind ``host:port`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def find_free_port(candidates: Optional[Iterable[int]] = None, host: str = "127.0.0.1") -> int:
    """The first free port of ``candidates``; without candidates one the OS picks.

    Raises RuntimeError when every candidate is taken.
    """
    if candidates is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            return probe.getsockname()[1]
    tried = []
    for port in candidates:
        tried.append(port)
        if port_is_free(port, host):
            return port
    raise RuntimeError(f"no free port among {tried[0]}..{tried[-1]} on {host}")


def job_environment(role: str, host: str, port: int, num_servers: int, num_workers: int,
                    base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """Environment of one ps-lite node of a job on ``host`` (loopback: every node there)."""
    env = dict(os.environ if base is None else base)
    env.update({
        "DMLC_ROLE": role,
        "DMLC_PS_ROOT_URI": host,
        "DMLC_PS_ROOT_PORT": str(port),
        "DMLC_NUM_SERVER": str(num_servers),
        "DMLC_NUM_WORKER": str(num_workers),
        "DMLC_NODE_HOST": host,
        "PYTHONUNBUFFERED": "1",
    })
    if role != "worker":
        env["OMP_NUM_THREADS"] = "1"  # scheduler and servers only sum arrays
    return env


@dataclass
class _Node:
    name: str
    process: subprocess.Popen
    is_worker: bool


def _stream(node: _Node, out: TextIO, lock: threading.Lock) -> None:
    """Copy a node's output to ``out``, one prefixed line per line (``\\r`` ends a line too)."""
    buffer = b""
    stream = node.process.stdout
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            break
        buffer += chunk.replace(b"\r", b"\n")
        *lines, buffer = buffer.split(b"\n")
        with lock:
            for line in lines:
                if line.strip():
                    out.write(f"[{node.name}] {line.decode('utf-8', 'replace')}\n")
            out.flush()
    if buffer.strip():
        with lock:
            out.write(f"[{node.name}] {buffer.decode('utf-8', 'replace')}\n")
            out.flush()


def _kill(nodes: Sequence[_Node], grace: float = 5.0) -> None:
    """SIGTERM every live node's process group, SIGKILL what is left after ``grace`` s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for node in nodes:
            if node.process.poll() is None:
                try:
                    os.killpg(node.process.pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(n.process.poll() is None for n in nodes):
            time.sleep(0.05)


def launch_local(worker_command: Sequence[str], num_workers: int, num_servers: int = 1,
                 port: Optional[int] = None, host: str = "127.0.0.1", out: TextIO = sys.stdout,
                 env: Optional[Mapping[str, str]] = None, shutdown_timeout: float = 30.0) -> int:
    """Run ``worker_command`` as ``num_workers`` workers of a dist job with its scheduler and servers.

    Parameters
    ----------
    worker_command : argv of one worker, e.g. ``[python, "train.py", cfg, "--set", ...]``
    num_workers, num_servers : job size
    port : scheduler port (None: a free one)
    host : address of every node (loopback)
    out : where the prefixed output lines go
    env : base environment (default: this process's)
    shutdown_timeout : seconds the scheduler and servers get to exit after the workers

    Returns
    -------
    int : 0 if every worker succeeded, else the exit status of the first failed worker
        (130 on Ctrl-C). Every process started here has exited when it returns.
    """
    if num_workers < 1 or num_servers < 1:
        raise ValueError("need at least one worker and one server")
    port = find_free_port(host=host) if port is None else port
    roles = [("scheduler", "scheduler", PS_NODE_COMMAND)]
    roles += [(f"server {i}", "server", PS_NODE_COMMAND) for i in range(num_servers)]
    roles += [(f"worker {i}", "worker", tuple(worker_command)) for i in range(num_workers)]
    nodes: List[_Node] = []
    threads: List[threading.Thread] = []
    lock = threading.Lock()
    status = 0
    try:
        for name, role, command in roles:
            process = subprocess.Popen(
                list(command), env=job_environment(role, host, port, num_servers, num_workers, env),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
            node = _Node(name, process, role == "worker")
            nodes.append(node)
            thread = threading.Thread(target=_stream, args=(node, out, lock), daemon=True)
            thread.start()
            threads.append(thread)
        status = _wait_for_workers(nodes, shutdown_timeout)
    except KeyboardInterrupt:
        status = 130
    finally:
        _kill(nodes)
        for thread in threads:
            thread.join(timeout=5.0)
    return status


def _wait_for_workers(nodes: Sequence[_Node], shutdown_timeout: float) -> int:
    """Block until every worker exits (0) or one fails (its status); then give the
    scheduler and servers ``shutdown_timeout`` s to finish, or report a hang as 1."""
    workers = [n for n in nodes if n.is_worker]
    others = [n for n in nodes if not n.is_worker]
    while True:
        for node in workers:
            code = node.process.poll()
            if code not in (None, 0):
                return code if code > 0 else 128 - code
        if all(n.process.poll() == 0 for n in workers):
            break
        for node in others:
            if node.process.poll() not in (None, 0):
                return 1
        time.sleep(0.1)
    deadline = time.monotonic() + shutdown_timeout
    while time.monotonic() < deadline:
        if all(n.process.poll() is not None for n in others):
            return 0
        time.sleep(0.1)
    return 1
