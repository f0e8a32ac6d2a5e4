"""Hostile rl_zoo3 log folders, built at test time: each would create a marker file if rl_zoo3 ran what it names."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV_ID = "PendulumPixels-v1"

PLUGIN = '''"""Importing this module touches $SB3_SACAE_TEST_MARKER: a class path naming it runs code."""
import os
import pathlib

pathlib.Path(os.environ["SB3_SACAE_TEST_MARKER"]).touch()

import gymnasium
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnvWrapper


class Wrapper(gymnasium.Wrapper):
    pass


class VecWrapper(VecEnvWrapper):
    def reset(self):
        return self.venv.reset()

    def step_wait(self):
        return self.venv.step_wait()


class Callback(BaseCallback):
    def _on_step(self):
        return True
'''


class _Touch:
    """Unpickling this runs ``touch <path>``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def bomb_pickle(marker: Path) -> bytes:
    """A pickle whose loading creates ``marker``."""
    return pickle.dumps(_Touch(marker), protocol=2)


def python_tag(marker: Path) -> str:
    """A YAML value that yaml.UnsafeLoader turns into ``os.system("touch marker")``."""
    return f'!!python/object/apply:os.system ["touch {marker}"]'


def plugin_dir(tmp_path: Path) -> Path:
    """A folder holding ``evilmod`` (see :data:`PLUGIN`), to put on PYTHONPATH."""
    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    (folder / "evilmod.py").write_text(PLUGIN)
    return folder


def log_folder(
    work: Path, algo: str = "sacae", env_id: str = ENV_ID, config: str | None = None, args: str | None = None
) -> Path:
    """``work/logs/<algo>/<env>_1`` with a model file that is never reached; returns the stats folder ``<env>``."""
    run = work / "logs" / algo / f"{env_id}_1"
    stats = run / env_id
    stats.mkdir(parents=True, exist_ok=True)
    (run / f"{env_id}.zip").write_bytes(b"not reached: the refusal comes first")
    if config is not None:
        (stats / "config.yml").write_text(config)
    (stats / "args.yml").write_text(args if args is not None else "env_kwargs: null\n")
    return stats


def fake_rl_zoo3(tmp_path: Path, edits: dict[str, tuple[str, str]]) -> Path:
    """A copy of the installed rl_zoo3 with ``{file: (old, new)}`` edits, as a newer release might read; returns
    the folder to put first on PYTHONPATH."""
    import rl_zoo3

    folder = tmp_path / "fake_zoo"
    shutil.copytree(Path(rl_zoo3.__file__).parent, folder / "rl_zoo3", ignore=shutil.ignore_patterns("__pycache__"))
    for name, (old, new) in edits.items():
        path = folder / "rl_zoo3" / name
        text = path.read_text()
        assert old in text, f"{name}: {old!r} not found"
        path.write_text(text.replace(old, new))
    return folder


def user_environ(pythonpath: list[Path] = (), python: str = sys.executable, **env: str) -> dict[str, str]:
    """A user's environment: no sb3-sacae variables of this shell, the source tree on PYTHONPATH for this interpreter."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SB3_SACAE_") and key not in ("PYTHONPATH", "TRUST_REMOTE_CODE")
    }
    environ.update(OMP_NUM_THREADS="1", MPLBACKEND="Agg", HF_HUB_OFFLINE="1", **env)
    paths = [str(path) for path in pythonpath]
    if python == sys.executable:
        paths.append(str(ROOT))
    if paths:
        environ["PYTHONPATH"] = os.pathsep.join(paths)
    return environ


def run_module(*args: str, cwd: Path, pythonpath: list[Path] = (), python: str = sys.executable, **env: str):
    """``python -m <args>`` as a user runs it (marker path in ``$SB3_SACAE_TEST_MARKER``)."""
    return subprocess.run([python, "-m", *args], cwd=cwd, env=user_environ(pythonpath, python, **env),
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip


def run_code(code: str, cwd: Path, pythonpath: list[Path] = (), **env: str):
    """``python -c <code>`` in a user's environment."""
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=user_environ(pythonpath, **env),
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip


def refusal(result: subprocess.CompletedProcess, error: str = "UntrustedZooFileError") -> str:
    """The one line a refused zoo script prints (and no traceback)."""
    assert result.returncode != 0, f"not refused:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if error in line]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]
