"""Small promises of the command line that a new user meets first: ``info`` and ``check`` work on
the embedded demo model like ``fill-mask``; a bad JSON line says where once ("at column N", never
"at at"); ``embed --npy`` files get the mode the umask gives; commands that start Ray turn its
usage statistics off unless the user set them, and drop Ray Data's known false-alarm error line.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from xlm_onnx._ray_env import USAGE_STATS_ENV, ray_defaults
from xlm_onnx.errors import json_error


def _cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "xlm_onnx", *args], capture_output=True, text=True, **kwargs)


def test_info_and_check_default_to_the_demo_model():
    info = _cli("info")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["vocab_size"] == 21474  # the embedded demo model's manifest
    check = _cli("check", "--json")
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["passed"] is True


@pytest.mark.parametrize("text,expected", [
    ('{"text": "abc', "Unterminated string starting at column 10"),
    ("{not json", "Expecting property name enclosed in double quotes at column 2"),
    ("[1, 2", "Expecting ',' delimiter at column 6"),
])
def test_json_error_says_where_once(text, expected):
    with pytest.raises(ValueError) as info:
        json.loads(text)
    assert json_error(info.value) == expected and " at at " not in json_error(info.value)


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_embed_npy_gets_the_umask_mode(fp32_dir, tmp_path, umask):
    source = tmp_path / "in.txt"
    source.write_text("Bonjour le monde.\nDas ist ein Haus.\n")
    out = tmp_path / "e.npy"
    proc = _cli("embed", "--input", str(source), "--model", str(fp32_dir), "--npy", str(out),
                preexec_fn=lambda: os.umask(umask))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask


def test_ray_usage_stats_off_unless_the_user_set_them():
    assert ray_defaults({})[USAGE_STATS_ENV] == "0"
    assert ray_defaults({USAGE_STATS_ENV: "1"})[USAGE_STATS_ENV] == "1"


def test_stderr_filter_drops_only_the_known_line():
    line = ("[2026-01-01 00:00:00,000 E 1 1] core_worker.cc:2465: Actor with class name: 'MapWorker(x)' and ID: "
            "'ab' has constructor arguments in the object store and max_restarts > 0. If the arguments ...")
    code = textwrap.dedent(f"""
        import os, sys
        from xlm_onnx._ray_env import StderrFilter
        with StderrFilter() as f:
            os.write(2, b"before\\n" + {line.encode()!r} + b"\\nafter (C level)\\n")
            print("python level", file=sys.stderr)
        print("dropped", f.dropped)
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "XLM_ONNX_DEBUG"})
    assert proc.returncode == 0 and proc.stdout == "dropped 1\n"
    assert proc.stderr == "before\nafter (C level)\npython level\n"


def test_output_filter_drops_the_kill_lines_of_a_normal_stop_on_stdout():
    line = ("\x1b[33m(raylet)\x1b[0m Task ServeController.graceful_shutdown failed. There are infinite retries "
            "remaining, so the task will be retried. Error: The actor is dead because it was killed by `ray.kill`.")
    code = textwrap.dedent(f"""
        import os
        from xlm_onnx._ray_env import filtered_output
        with filtered_output():
            os.write(1, b"kept\\n" + {line.encode()!r} + b"\\n")
            os.write(2, {line.replace("ServeController.graceful_shutdown", "MapWorker(x).submit").encode()!r} + b"\\n")
            print("also kept", flush=True)
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "XLM_ONNX_DEBUG"})
    assert proc.returncode == 0 and proc.stdout == "kept\nalso kept\n" and proc.stderr == ""


def test_ray_colours_off_when_the_output_is_not_a_terminal():
    assert ray_defaults({})["RAY_COLOR_PREFIX"] == "0"  # pytest captures both streams
    assert ray_defaults({"RAY_COLOR_PREFIX": "1"})["RAY_COLOR_PREFIX"] == "1"
