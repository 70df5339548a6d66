"""``import graphwalk`` where Numba cannot write its cache (issue 7).

Numba's ``cache=True`` stores compiled kernels next to the module (``__pycache__``), else under
``~/.cache/numba``, else under ``NUMBA_CACHE_DIR``; with none writable, defining a kernel raises.
Each test runs a fresh interpreter on a copy of the package whose ``__pycache__`` is a regular file
and whose ``HOME`` is a regular file, so no directory can be made there, whatever the user id
(permission bits would not stop root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import graphwalk

pytestmark = pytest.mark.slow  # fresh interpreters that compile the kernels without a cache

SAMPLE = """
import numpy as np
import graphwalk as gw
assert gw.__file__.startswith({site!r}), gw.__file__
x = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
index = gw.build_index(x, labels=np.arange(60) % 3, groups=["labels"], graphs=["er"], seed=0)
batches = list(gw.GraphWalkBatchSampler(index, 16, seed=0))
assert sorted(i for b in batches for i in b) == list(range(60))
import numba
print("CACHE_DIR=" + numba.config.CACHE_DIR)
"""


def _unwritable_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    site = tmp_path / "site"
    shutil.copytree(
        Path(graphwalk.__file__).parent,
        site / "graphwalk",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for pkg in [site / "graphwalk", *(p for p in (site / "graphwalk").rglob("*") if p.is_dir())]:
        (pkg / "__pycache__").write_text("not a directory")
    home = tmp_path / "home"
    home.write_text("not a directory")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(
        HOME=str(home),
        PYTHONPATH=str(site),
        PYTHONDONTWRITEBYTECODE="1",
        TMPDIR=str(tmp_path / "tmp"),
    )
    (tmp_path / "tmp").mkdir()
    return env, site


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "Warning" in line]


def test_import_and_sample_without_a_writable_cache_location(tmp_path):
    env, site = _unwritable_env(tmp_path)
    r = _run(["-c", SAMPLE.format(site=str(site))], env, tmp_path)
    assert r.returncode == 0, r.stderr
    cache_dir = r.stdout.split("CACHE_DIR=")[1].strip()
    assert Path(cache_dir).parent == tmp_path / "tmp"
    assert any(Path(cache_dir).rglob("*.nbi")), "the kernels were not cached in the fallback"
    warnings = _warnings(r.stderr)
    assert len(warnings) == 1 and "NUMBA_CACHE_DIR" in warnings[0], r.stderr
    # A second process finds the same fallback directory and its compiled kernels.
    r2 = _run(["-c", SAMPLE.format(site=str(site))], env, tmp_path)
    assert r2.returncode == 0 and r2.stdout.split("CACHE_DIR=")[1].strip() == cache_dir


def test_version_without_a_writable_cache_location(tmp_path):
    env, _ = _unwritable_env(tmp_path)
    r = _run(["-m", "graphwalk", "--version"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert graphwalk.__version__ in r.stdout
    assert len(_warnings(r.stderr)) <= 1, r.stderr


def test_no_warning_when_the_package_cache_is_writable(tmp_path):
    env, site = _unwritable_env(tmp_path)
    for cache in (site / "graphwalk").glob("**/__pycache__"):  # every package dir writable
        cache.unlink()
    r = _run(
        [
            "-W",
            "error::RuntimeWarning",
            "-c",
            "import graphwalk.walk, numba; print(numba.config.CACHE_DIR)",
        ],
        env,
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""  # numba keeps its own choice: the package's __pycache__


def test_a_users_own_writable_cache_dir_is_kept(tmp_path):
    env, _ = _unwritable_env(tmp_path)
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")
    r = _run(
        [
            "-W",
            "error::RuntimeWarning",
            "-c",
            "import graphwalk.walk, numba; print(numba.config.CACHE_DIR)",
        ],
        env,
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(tmp_path / "mine")


def test_a_shared_fallback_dir_that_others_can_write_is_not_used(tmp_path):
    env, _ = _unwritable_env(tmp_path)
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    planted = tmp_path / "tmp" / f"graphwalk-numba-{uid}"
    planted.mkdir()
    planted.chmod(0o777)  # anyone could have put a crafted cache file there
    probe = "import graphwalk.walk.kernels, numba; print(numba.config.CACHE_DIR)"
    r = _run(["-c", probe], env, tmp_path)  # the cache is probed when kernels are first imported
    assert r.returncode == 0, r.stderr
    used = Path(r.stdout.strip())
    assert used.parent == tmp_path / "tmp" and used != planted


def test_no_cache_at_all_when_nothing_can_be_written(tmp_path):
    env, site = _unwritable_env(tmp_path)
    (tmp_path / "tmp").rmdir()
    (tmp_path / "tmp").write_text("not a directory either")
    script = "import tempfile; tempfile.tempdir = {t!r}\n".format(t=str(tmp_path / "tmp" / "x"))
    r = _run(["-c", script + SAMPLE.format(site=str(site))], env, tmp_path)
    assert r.returncode == 0, r.stderr
    warnings = _warnings(r.stderr)
    assert len(warnings) == 1 and "without a cache" in warnings[0], r.stderr


def test_import_graphwalk_is_light(tmp_path):
    """``import graphwalk`` loads neither torch nor Numba nor pyarrow, and probes no cache; the
    public names load them on first use."""
    code = (
        "import sys, graphwalk\n"
        "heavy = [m for m in ('torch', 'numba', 'pyarrow', 'graphwalk._numba_cache') "
        "if m in sys.modules]\n"
        "print(heavy)\n"
        "graphwalk.GraphWalkBatchSampler\n"
        "print(sorted(m for m in ('torch', 'numba', 'graphwalk._numba_cache') if m in sys.modules))\n"
        "print('walk' in dir(graphwalk), graphwalk.walk.__name__)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "[]"
    assert lines[1] == "['graphwalk._numba_cache', 'numba', 'torch']"
    assert lines[2] == "True graphwalk.walk"
    with pytest.raises(AttributeError, match="no attribute 'GraphWalker'"):
        graphwalk.GraphWalker  # noqa: B018
