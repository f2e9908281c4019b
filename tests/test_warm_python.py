"""The warm interpreter of the script-running tests (tests/warm_python.py) behaves as
``python SCRIPT ARGS`` where those tests look: arguments, folder, environment, streams,
exit status, an uncaught exception, ``-c`` handed to the real interpreter, SIGTERM passed on."""
import os
import signal
import subprocess
import sys

SCRIPT = """import os, sys
print(sys.argv[1:], os.getcwd(), os.environ.get("WARM_TEST"), sys.path[0] == os.path.dirname(os.path.realpath(__file__)))
print("to stderr", file=sys.stderr)
if sys.argv[1] == "raise":
    raise ValueError("boom")
if sys.argv[1] == "sleep":
    print("sleeping", flush=True)
    import time; time.sleep(600)
sys.exit(int(sys.argv[1]))
"""


def test_a_script_runs_as_with_python(warm_python, tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(SCRIPT)
    work = tmp_path / "work"
    work.mkdir()
    environment = dict(os.environ, WARM_TEST="yes")
    done = subprocess.run([warm_python, str(script), "3", "a b"], capture_output=True, text=True, cwd=str(work),
                          env=environment, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (3, f"['3', 'a b'] {work} yes True\n", "to stderr\n")
    raised = subprocess.run([warm_python, str(script), "raise"], capture_output=True, text=True, timeout=120)
    assert raised.returncode == 1 and raised.stderr.rstrip().endswith("ValueError: boom")
    inline = subprocess.run([warm_python, "-c", "import sys; print(sys.executable); sys.exit(4)"],
                            capture_output=True, text=True, timeout=120)
    assert (inline.returncode, inline.stdout) == (4, sys.executable + "\n")


def test_sigterm_reaches_the_child(warm_python, tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(SCRIPT)
    launcher = subprocess.Popen([warm_python, str(script), "sleep"], stdout=subprocess.PIPE, text=True)
    assert launcher.stdout.readline().endswith("True\n") and launcher.stdout.readline() == "sleeping\n"
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=60) == -signal.SIGTERM  # as a killed `python SCRIPT`, not after its 600 s
