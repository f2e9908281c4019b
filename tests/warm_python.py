"""A warm interpreter for tests that run the project's scripts many times in a row.

Importing MXNet costs 5-30 s on a 2-core machine, more than most tiny scripts run. The
server (``python warm_python.py serve SOCKET``) imports ``tusimple_duc`` and MXNet once and
listens on a Unix socket; the launcher (an executable written by :func:`write_launcher`,
used where a test would give ``sys.executable``, e.g. as the paper scripts' ``PYTHON``) sends
its arguments, folder, environment and its own stdin/stdout/stderr descriptors; the server
forks a child that becomes ``python SCRIPT ARGS`` (``sys.argv``, ``sys.path[0]`` = the script's
(real) folder, ``__main__`` = the script, the launcher's folder, environment and streams) and sends
back its exit status, which the launcher exits with. ``python -c`` / ``-m`` and anything but a
script path are handed to the real interpreter (``os.execv``). SIGTERM, SIGINT and SIGHUP of the
launcher are passed on to the child (SIGKILL cannot be: the child then runs to its end).

What a forked child shares with the server, and a fresh interpreter would not: modules
imported before the fork (their import-time reads of the environment, e.g. the thread count
``tusimple_duc.runtime`` sets, come from the server's environment). Tests that check
process-level behaviour (signals, thread counts, import order) use real interpreters.
"""
import atexit
import json
import os
import runpy
import signal
import socket
import sys

_MAX_REQUEST = 1 << 20


def _become_script(request: dict) -> int:
    """In the forked child: run ``request['argv']`` as ``python SCRIPT ARGS``; its exit status."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    script = os.path.abspath(request["argv"][0])
    sys.argv = [script] + request["argv"][1:]
    sys.path[0] = os.path.dirname(os.path.realpath(script))  # as CPython: the folder of a symlink's target
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = open(1, "w", closefd=False, buffering=1)
    sys.stderr = open(2, "w", closefd=False, buffering=1)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    status = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            status = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
            status = 1
    except BaseException:  # noqa: B902  (what an uncaught exception does to `python SCRIPT`)
        import traceback

        traceback.print_exc()
        status = 1
    atexit._run_exitfuncs()  # what the interpreter's exit would run, before the status is sent
    sys.stdout.flush()
    sys.stderr.flush()
    return status


def serve(path: str) -> None:
    """Import the heavy modules once, then fork a child per launcher connection."""
    import tusimple_duc  # noqa: F401  (before mxnet: thread settings)
    import mxnet  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)
    print("ready", flush=True)
    while True:
        connection, _ = server.accept()
        if os.fork() == 0:
            server.close()
            message, descriptors, _, _ = socket.recv_fds(connection, _MAX_REQUEST, 3)
            for target, descriptor in enumerate(descriptors):
                os.dup2(descriptor, target)
                os.close(descriptor)
            connection.sendall(f"{os.getpid()}\n".encode())  # the launcher forwards signals to it
            status = _become_script(json.loads(message.decode()))
            connection.sendall(json.dumps({"status": status}).encode())
            connection.close()
            os._exit(status)
        connection.close()


def launch(path: str, real_python: str, argv: list) -> int:
    """The launcher: run ``argv`` in a child of the server at ``path``; its exit status."""
    if not argv or argv[0].startswith("-") or not os.path.isfile(argv[0]):
        os.execv(real_python, [real_python] + argv)
    request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    socket.send_fds(client, [request], [0, 1, 2])
    client.shutdown(socket.SHUT_WR)
    answer = b""
    forwarded_signals = []

    def forward(number, _frame):
        forwarded_signals.append(number)
        os.kill(child, number)

    child = 0
    while True:
        chunk = client.recv(4096)
        if not chunk:
            break
        answer += chunk
        if b"\n" in answer and not answer.startswith(b"{"):
            pid, answer = answer.split(b"\n", 1)
            child = int(pid)
            for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(number, forward)
    if not answer and forwarded_signals:  # the child died of the signal: so does the launcher
        signal.signal(forwarded_signals[0], signal.SIG_DFL)
        os.kill(os.getpid(), forwarded_signals[0])
    if not answer:
        print("warm_python: the child died without a status", file=sys.stderr)
        return 1
    return json.loads(answer)["status"]


def write_launcher(folder: str, socket_path: str) -> str:
    """Write the executable launcher into ``folder``; its path."""
    launcher = os.path.join(folder, "warm-python")
    with open(launcher, "w", encoding="utf-8") as f:
        f.write(f"#!{sys.executable} -S\n"
                "import sys\n"
                f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})\n"
                "from warm_python import launch\n"
                f"sys.exit(launch({socket_path!r}, {sys.executable!r}, sys.argv[1:]))\n")
    os.chmod(launcher, 0o755)
    return launcher


if __name__ == "__main__":
    if sys.argv[1:2] != ["serve"] or len(sys.argv) != 3:
        sys.exit("usage: python warm_python.py serve SOCKET")
    serve(sys.argv[2])
