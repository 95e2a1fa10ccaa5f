"""`motionlib --help` and `motionlib list` must not import the heavy libraries."""

import json
import subprocess
import sys

import pytest

HEAVY = ("mediapipe", "torch", "diffusers", "transformers", "zarr", "scipy", "cv2", "ray")

PROBE = """
import json, sys, runpy
sys.argv = ["motionlib"] + json.loads(sys.argv[1])
try:
    runpy.run_module("motionlib", run_name="__main__")
except SystemExit as e:
    code = e.code
else:
    code = 0
sys.stderr.write("\\nHEAVY=" + json.dumps(sorted(m for m in %r if m in sys.modules)) + " CODE=" + str(code) + "\\n")
""" % (HEAVY,)


def _imports(args):
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True)
    line = [l for l in proc.stderr.splitlines() if l.startswith("HEAVY=")][-1]
    heavy, code = line[len("HEAVY="):].rsplit(" CODE=", 1)
    return json.loads(heavy), code, proc


@pytest.mark.parametrize("args", [
    ["--help"], ["ingest", "--help"], ["smooth", "--help"], ["preview", "--help"], ["export", "--help"],
    ["list"], ["list", "--json"], ["list", "tag:sample", "score>0.1", "-tag:draft", "--sort", "-score"],
    ["show", "demo"], ["browse", "--help"], ["rename", "--help"],
    ["render", "--help"], ["models", "--help"], ["models"], ["models", "pose", "--json"], ["models", "fetch", "--help"],
    ["identity", "--help"], ["identity", "add", "--help"], ["renders"], ["identity", "list"],
])
def test_light_commands_import_no_heavy_library(args, demo_library):
    lib, _ = demo_library
    heavy, code, proc = _imports(["--library", str(lib)] + args)
    assert heavy == [], f"{args} imported {heavy}"
    assert code in ("0", "None"), proc.stderr
    if args[0] == "list" and "--json" not in args:
        assert "demo@1" in proc.stdout


def test_every_command_and_option_has_help():
    from motionlib.cli import app

    import typer.main

    group = typer.main.get_command(app)
    assert group.commands
    for name, cmd in group.commands.items():
        assert cmd.help and cmd.help.strip(), f"command {name} has no help"
        for param in cmd.params:
            if param.param_type_name == "option" and param.name != "help":
                assert getattr(param, "help", None), f"{name} --{param.name} has no help"


def test_python_dash_m_works():
    proc = subprocess.run([sys.executable, "-m", "motionlib", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "ingest" in proc.stdout
