"""Every ``python SCRIPT ...`` command in the README's and docs/'s code blocks and in the scripts'
``--help`` examples names an existing script, options that script has, and ``--set`` keys the
config it reads accepts (the config loaded with them; placeholders such as CONFIG against the
defaults). The commands are checked, not run (most need the real data or hours)."""
import ast
import glob
import os
import re
import shlex

import pytest

from tusimple_duc.config import load_test_config, load_train_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ["train.py", "test.py"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "tools", "*.py")))
TRAIN_READERS = ("train.py", "tools/launch_local.py", "train/train_model.py")


def documented_commands():
    """(where, command text) of every ``python SCRIPT`` line of a code block or a ``--help`` example."""
    found = []
    for path in ["README.md"] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))):
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            text = f.read()
        for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
            found += [(os.path.relpath(os.path.join(ROOT, path), ROOT), line)
                      for line in _python_lines(block.replace("\\\n", " "))]
    for script in SCRIPTS:
        with open(os.path.join(ROOT, script), encoding="utf-8") as f:
            doc = ast.get_docstring(ast.parse(f.read())) or ""
        found += [(f"{script} --help", line) for line in _python_lines(doc.replace("\\\n", " "))]
    return found


def _python_lines(block):
    lines = []
    for line in block.splitlines():
        command = line.split(" #")[0].strip()
        match = re.search(r"(?:^|&& )(python[0-9.]* (?!-[mc] )[^;&|]*)", command)
        if match and not command.startswith("#"):
            folder = re.search(r"cd (\S+) && python", command)  # cd train && python train_model.py ...
            words = match.group(1).strip().split(" ", 2)
            if folder:
                words[1] = os.path.join(folder.group(1), words[1])
            lines.append(" ".join(words))
    return lines


COMMANDS = documented_commands()


def test_the_commands_are_found():
    scripts = {shlex.split(command)[1] for _, command in COMMANDS}
    assert {"train.py", "test.py", "tools/export_model.py", "tools/bench.py", "tools/make_lists.py"} <= scripts


@pytest.mark.parametrize("where, command", COMMANDS, ids=[f"{w}: {c[:60]}" for w, c in COMMANDS])
def test_documented_command_is_valid(where, command):
    words = [w.strip("[]") for w in shlex.split(command) if w not in ("|", "...", "[", "]")]
    script = os.path.normpath(words[1])  # cd test && python ../test.py: test/../test.py
    path = os.path.join(ROOT, script)
    assert os.path.isfile(path), f"{where}: {script} does not exist"
    with open(path, encoding="utf-8") as f:
        source = f.read()
    if script in ("train.py", "test.py", "tools/paper_table.py") + TRAIN_READERS:  # --set, train.py's options
        for shared in ("tusimple_duc/cli.py", "train.py"):
            with open(os.path.join(ROOT, shared), encoding="utf-8") as f:
                source += f.read()
    options = [w.split("=")[0] for w in words[2:] if w.startswith("--")]
    for option in options:
        assert f'"{option}"' in source, f"{where}: {script} has no option {option}"
    overrides = [words[i + 1] for i, word in enumerate(words) if word == "--set" and i + 1 < len(words)]
    overrides = [o for o in overrides if "=" in o and not o.startswith("section.")]
    configs = [w for w in words[2:] if w.endswith(".cfg")]
    if script in TRAIN_READERS + ("test.py",):
        # from the root, or from the folder of `cd FOLDER && python ...` (the script's first path component)
        candidates = [os.path.join(ROOT, folder, config) for config in configs[:1] for folder in ("", words[1].split("/")[0])]
        config = next((path for path in candidates if os.path.isfile(path)), None)
        if script == "test.py":
            load_test_config(config, overrides if config else overrides + ["data.image_list=x.lst"])
        else:
            load_train_config(config, overrides if config else overrides + ["data.train_list=x.lst"])


@pytest.mark.parametrize("script, load", [("train.py", load_train_config), ("test.py", load_test_config)])
def test_help_examples_options_and_defaults(script, load):
    """--help: its --set example is a key of the config the script reads, every option states its
    default, and it names where the config keys are documented and what a run writes."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, os.path.join(ROOT, script), "--help"], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT, COLUMNS="200"), timeout=120)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    example = re.search(r"e\.g\. --set (\S+?);", text).group(1)
    load(None, [example, "data.train_list=x.lst" if script == "train.py" else "data.image_list=x.lst"])
    options = re.findall(r"^  (--[a-z-]+)[^\n]*\n((?:                .*\n)*)", text, re.M)
    for option, _ in options:
        entry = text.split(f"  {option}", 1)[1].split("\n  --", 1)[0]
        assert "default" in entry, f"{script} --help: {option} does not state its default"
    assert "tusimple_duc/config.py" in text and "writes" in text


def test_every_option_of_every_script_states_its_default():
    """Source check of train.py, test.py and tools/*.py: each optional argument's help says its default."""
    missing = []
    for script in SCRIPTS:
        with open(os.path.join(ROOT, script), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument"):
                continue
            names = [a.value for a in node.args if isinstance(a, ast.Constant)]
            keywords = {k.arg: k.value for k in node.keywords}
            required = getattr(keywords.get("required"), "value", False)
            if not names or not str(names[0]).startswith("--") or required:
                continue
            text = ast.unparse(keywords["help"]) if "help" in keywords else ""
            if "default" not in text.lower():
                missing.append(f"{script} {names[0]}")
    assert missing == []
