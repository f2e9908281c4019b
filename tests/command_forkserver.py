"""A fork server for the documented-command tests: ``python command_forkserver.py``.

Importing MXNet takes 5-10 s on this 2-core machine, so starting ~40 scripts as fresh
interpreters would cost minutes of imports alone. This process imports ``tusimple_duc`` and
MXNet once, then runs each requested script in a FORKED child process, as ``python SCRIPT ARGS``
would: its own process and exit status, ``sys.argv``, ``sys.path[0]`` = the script's folder,
``__main__`` = the script, the given current folder, stdin from /dev/null, stdout and stderr
to files. Requests are JSON lines on stdin (``{"argv": [...], "cwd": ..., "stdout": path,
"stderr": path, "timeout": seconds}``); the answer is a JSON line ``{"status": N}`` (N < 0:
killed by signal -N, e.g. -14 when the timeout ran out).
"""
import json
import os
import runpy
import signal
import sys

import tusimple_duc  # noqa: F401  (before mxnet: thread settings)
import mxnet  # noqa: F401  (the import every script pays, paid once)


def run_child(request: dict) -> None:
    """In the forked child: become ``python ARGV`` in ``cwd`` and exit with its status."""
    signal.alarm(int(request["timeout"]))
    os.chdir(request["cwd"])
    for stream, path in ((0, os.devnull), (1, request["stdout"]), (2, request["stderr"])):
        handle = os.open(path, os.O_RDONLY if stream == 0 else os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(handle, stream)
        os.close(handle)
    script = os.path.abspath(request["argv"][1])
    sys.argv = [script] + request["argv"][2:]
    sys.path[0] = os.path.dirname(script)
    status = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if not isinstance(stop.code, (int, type(None))):
            print(stop.code, file=sys.stderr)
    except BaseException:  # noqa: B902  (what an uncaught exception does to `python SCRIPT`)
        import traceback

        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        child = os.fork()
        if child == 0:
            run_child(request)
        _, wait_status = os.waitpid(child, 0)
        status = os.waitstatus_to_exitcode(wait_status)
        print(json.dumps({"status": status}), flush=True)


if __name__ == "__main__":
    main()
