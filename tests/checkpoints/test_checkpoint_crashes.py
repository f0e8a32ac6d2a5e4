"""
Checkpoints never lose the newest state: a real ``kill -9`` at chosen points of a bundle write, a corrupt newest
bundle, and several processes writing and resuming in one directory.
"""

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from sb3_sacae.callbacks import CheckpointBundleCallback, list_bundles, resume_from_bundle
from tests.conftest import TEST_DEVICE, TinyPixelEnv, tiny_model

REPO = Path(__file__).resolve().parents[2]

# The child writes a bundle at step 10, takes 5 more steps, then writes again and kills itself (SIGKILL, no cleanup)
# at the chosen point of that second write. "swap" rewrites the step-10 name (two renames), "new" writes step 15.
KILLED_WRITER = textwrap.dedent("""
    import os, shutil, signal, sys
    from sb3_sacae.callbacks import CheckpointBundleCallback
    from sb3_sacae.checkpoints import save_bundle
    from tests.conftest import tiny_model

    save_path, point, name = sys.argv[1], sys.argv[2], sys.argv[3]
    model = tiny_model()
    model.learn(10, callback=CheckpointBundleCallback(10, save_path))
    model.learn(5, reset_num_timesteps=False)

    def kill_at(module, attribute, when):
        real, calls = getattr(module, attribute), []
        def wrapper(*args, **kwargs):
            calls.append(args)
            if when(len(calls)):
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        setattr(module, attribute, wrapper)

    if point == "between_renames":  # the old bundle is moved aside, the new one not yet in place
        kill_at(os, "rename", lambda n: n == 2)
    elif point == "before_state":  # model and buffer written, state.json (written last) not yet
        kill_at(os, "replace", lambda n: n == 3)
    elif point == "before_cleanup":  # swap done, the replaced bundle not yet deleted
        kill_at(shutil, "rmtree", lambda n: n == 1)
    save_bundle(model, os.path.join(save_path, name))
    print("not killed", flush=True)
    """)


def _kill_during_second_write(save_path: Path, point: str, name: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(save_path), point, name],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == -9, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("point", "name", "newest_steps"),
    [
        ("between_renames", "checkpoint_10_steps", 15),  # the newest exists only under a temporary name
        ("before_cleanup", "checkpoint_10_steps", 15),
        ("before_state", "checkpoint_15_steps", 10),  # the incomplete bundle is not a bundle: the previous one is
    ],
)
def test_resume_after_a_kill_finds_the_newest_complete_bundle(tmp_path, point, name, newest_steps):
    _kill_during_second_write(tmp_path, point, name)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Resumed with a fresh env reset")
        resumed = resume_from_bundle(tmp_path, TinyPixelEnv(), device=TEST_DEVICE)
    assert resumed.num_timesteps == newest_steps
    # the next run in the directory puts the bundle back under its final name and removes the leftovers
    resumed.learn(1, reset_num_timesteps=False, callback=CheckpointBundleCallback(100, tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert max(int(p.name.split("_")[1]) for p in list_bundles(tmp_path)) >= 10


@pytest.mark.parametrize("damage", ["truncated model", "truncated buffer", "state not json"])
def test_a_corrupt_newest_bundle_falls_back_to_the_newest_intact_one(tmp_path, damage):
    tiny_model().learn(20, callback=CheckpointBundleCallback(10, tmp_path))
    newest = tmp_path / "checkpoint_20_steps"
    target = {
        "truncated model": newest / "model.zip",
        "truncated buffer": newest / "replay_buffer.npz",
        "state not json": newest / "state.json",
    }[damage]
    target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])
    with pytest.warns(UserWarning, match="checkpoint_20_steps"):
        resumed = resume_from_bundle(tmp_path, TinyPixelEnv(), device=TEST_DEVICE)
    assert resumed.num_timesteps == 10


def test_a_bundle_file_that_is_a_symlink_to_a_device_is_refused(tmp_path):
    tiny_model().learn(20, callback=CheckpointBundleCallback(10, tmp_path))
    buffer = tmp_path / "checkpoint_20_steps" / "replay_buffer.npz"
    buffer.unlink()
    buffer.symlink_to("/dev/zero")
    with pytest.warns(UserWarning, match="symbolic link|not a regular file"):
        resumed = resume_from_bundle(tmp_path, TinyPixelEnv(), device=TEST_DEVICE)
    assert resumed.num_timesteps == 10


# Writers and a reader started together, round after round, in a fresh directory per round; each process waits
# for the others before a round so their bundle writes overlap.
STRESS_WORKER = textwrap.dedent("""
    import sys, time, warnings
    from pathlib import Path
    warnings.simplefilter("ignore")
    from sb3_sacae.callbacks import CheckpointBundleCallback, resume_from_bundle
    from tests.conftest import TEST_DEVICE, TinyPixelEnv, tiny_model

    base, role, index, processes, rounds = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    model = tiny_model(learning_starts=1000) if role == "writer" else None
    for round_ in range(rounds):
        directory = base / f"round_{round_}"
        directory.mkdir(parents=True, exist_ok=True)
        (base / f"ready_{round_}_{index}").touch()
        while len(list(base.glob(f"ready_{round_}_*"))) < processes:
            time.sleep(0.005)
        if role == "writer":
            model.learn(12, callback=CheckpointBundleCallback(2, directory, keep_last=2), reset_num_timesteps=True)
        else:
            deadline = time.time() + 4
            while time.time() < deadline:
                try:
                    resume_from_bundle(directory, TinyPixelEnv(), device=TEST_DEVICE)
                except FileNotFoundError:
                    time.sleep(0.01)
    print("ok", flush=True)
    """)


def _stress(tmp_path: Path, rounds: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    roles = ["writer", "writer", "reader"]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", STRESS_WORKER, str(tmp_path), role, str(i), str(len(roles)), str(rounds)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i, role in enumerate(roles)
    ]
    outputs = [child.communicate(timeout=120 + 30 * rounds)[0] for child in children]
    failures = [out for child, out in zip(children, outputs, strict=True) if child.returncode != 0]
    assert not failures, "\n\n".join(failures)
    for round_ in range(rounds):
        directory = tmp_path / f"round_{round_}"
        assert resume_from_bundle(directory, TinyPixelEnv(), device=TEST_DEVICE).num_timesteps == 12
        assert len(list_bundles(directory)) == 4  # keep_last=2 of each writer's run


def test_two_writers_and_a_reader_in_one_directory(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _stress(tmp_path, rounds=2)


@pytest.mark.slow
def test_two_writers_and_a_reader_in_one_directory_many_rounds(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _stress(tmp_path, rounds=24)
