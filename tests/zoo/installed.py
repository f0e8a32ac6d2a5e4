"""The package as a user installs it: a wheel built from the working tree, installed into a fresh virtual env.

Built once per test process (``installed_python``), so that several slow tests run the real start-up hook and the
real console scripts without paying for the build each time.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def installed_python() -> Path:
    """``python`` of a venv (with the system's site-packages for the dependencies) holding the freshly built wheel."""
    base = Path(tempfile.mkdtemp(prefix="sacae-wheel-"))
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(base / "dist")]
    subprocess.run([*build, str(ROOT)], check=True, timeout=600)
    wheel = next((base / "dist").glob("sb3_sacae-*.whl"))
    venv.create(base / "venv", system_site_packages=True, with_pip=False)
    python = base / "venv" / "bin" / "python"
    # --ignore-installed: an editable install of the same version in the system's site-packages must not win
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--ignore-installed", "-q"]
    subprocess.run([*install, str(wheel)],
                   check=True, timeout=600, env=user_env())  # fmt: skip
    # the wheel, not another sb3_sacae of the system's site-packages (an editable install of the same version)
    found = subprocess.run([str(python), "-c", "import sb3_sacae; print(sb3_sacae.__file__)"], env=user_env(), cwd=base,
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    if not found.startswith(str(base / "venv")):
        raise RuntimeError(f"the venv imports sb3_sacae from {found.strip()}, not from the wheel just installed")
    return python


def user_env(base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The environment of a user's shell (``base``, else this one): no PYTHONPATH to the source tree, the hook
    enabled, one thread."""
    base = dict(os.environ if base is None else base)
    env = {key: value for key, value in base.items() if key not in ("PYTHONPATH", "SB3_SACAE_NO_ZOO_HOOK")}
    env.update(OMP_NUM_THREADS="1", MPLBACKEND="Agg", **extra)
    return env


def run_installed(
    *args: str, cwd: Path, timeout: int = 600, env: dict[str, str] | None = None, **extra: str
) -> subprocess.CompletedProcess:
    """``python -m <args>`` with the installed wheel, in ``cwd``, in :func:`user_env` (``env`` plus ``extra``)."""
    command = [str(installed_python()), "-m", *args]
    return subprocess.run(command, cwd=cwd, env=user_env(env, **extra), capture_output=True, text=True, timeout=timeout)
