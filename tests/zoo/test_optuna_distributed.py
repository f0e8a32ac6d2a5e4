"""Distributed SACAE searches for real: several worker processes, one study (journal file, SQLite, PostgreSQL)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import yaml

from sb3_sacae.zoo.sampler import make_storage

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--env", "PendulumPixels-v1", "--env-kwargs", "image_size:32", "frame_stack:2", "--sampler", "random"]
TINY += ["--pruner", "none", "--n-evaluations", "1", "--eval-episodes", "1", "--no-optim-plots", "-f", "logs"]
TINY += ["--hyperparams", "learning_starts:8", "buffer_size:100", "policy_kwargs:dict(n_filters=4, n_conv_layers=2)"]
COMPLETE = optuna.trial.TrialState.COMPLETE


def worker(cwd: Path, storage: str, *args: str, **env: str) -> subprocess.Popen:
    environ = {key: value for key, value in os.environ.items() if key != "SB3_SACAE_NO_ZOO_HOOK"}
    environ.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", **env)
    command = [sys.executable, "-m", "sb3_sacae.zoo", "train", "--algo", "sacae", "-optimize", "--storage", storage]
    return subprocess.Popen(
        [*command, "--study-name", "sacae", *TINY, *args],
        cwd=cwd,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: int = 300) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-5000:]
    return output


def two_workers_share_one_study(tmp_path: Path, storage: str) -> optuna.Study:
    # as documented: create the study (and an RDB's tables) once, before the workers race to do it
    optuna.create_study(study_name="sacae", storage=make_storage(storage, heartbeat_interval=None), direction="maximize")
    workers = [worker(tmp_path, storage, "-n", "24", "--n-trials", "2", "--seed", str(seed)) for seed in (1, 2)]
    for process in workers:
        finish(process)
    study = optuna.load_study(study_name="sacae", storage=make_storage(storage, heartbeat_interval=None))
    assert len(study.trials) == 4
    assert [trial.state for trial in study.trials] == [COMPLETE] * 4
    assert sorted(trial.number for trial in study.trials) == [0, 1, 2, 3]
    return study


def test_two_workers_share_a_journal_file_and_trial_zero_replays(tmp_path):
    storage = str(tmp_path / "sacae.log")
    study = two_workers_share_one_study(tmp_path, storage)

    # --trial-id 0 (ignored by rl_zoo3 2.9.2) turns trial 0's parameters back into a training run
    environ = {key: value for key, value in os.environ.items() if key != "SB3_SACAE_NO_ZOO_HOOK"}
    environ.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    tiny = [arg for arg in TINY if arg not in ("-f", "logs")]
    command = [sys.executable, "-m", "sb3_sacae.zoo", "train", "--algo", "sacae", "-n", "16", "-f", "replay", *tiny]
    command += ["--storage", storage, "--study-name", "sacae", "--trial-id", "0"]
    result = subprocess.run(command, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-5000:]
    config_path = next((tmp_path / "replay").rglob("config.yml"))
    config = yaml.load(config_path.read_text(), Loader=yaml.UnsafeLoader)  # our own test output
    trial = study.trials[0]
    for name in ("encoder_tau", "encoder_lr", "decoder_lr", "decoder_latent_lambda", "actor_update_interval"):
        assert config[name] == trial.params[name]
    assert config["batch_size"] == 2 ** trial.params["batch_size_pow"]


@pytest.mark.slow
def test_killed_worker_trial_is_failed_by_the_heartbeat(tmp_path):
    """SQLite URL (an RDB like PostgreSQL): a worker killed mid-trial stops beating, the next worker fails its trial."""
    storage = f"sqlite:///{tmp_path / 'sacae.db'}"
    beat = {"SB3_SACAE_OPTUNA_HEARTBEAT": "1", "SB3_SACAE_OPTUNA_GRACE": "2"}
    victim = worker(tmp_path, storage, "-n", "100000", "--n-trials", "1", **beat)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            try:
                study = optuna.load_study(study_name="sacae", storage=storage)
                if study.get_trials(states=[optuna.trial.TrialState.RUNNING]):
                    break
            except KeyError:  # study not created yet
                pass
            time.sleep(0.5)
        else:
            pytest.fail("the first worker never started a trial")
        time.sleep(2)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.communicate()
    time.sleep(3)  # longer than the grace period
    finish(worker(tmp_path, storage, "-n", "16", "--n-trials", "1", **beat))
    study = optuna.load_study(study_name="sacae", storage=storage)
    states = [trial.state for trial in study.trials]
    assert states == [optuna.trial.TrialState.FAIL, COMPLETE]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def postgres_url():
    """A throwaway PostgreSQL cluster (Debian `postgresql` package), or a skip saying what is missing."""
    pytest.importorskip("psycopg2", reason="pip install psycopg2-binary to test PostgreSQL storages")
    initdb = shutil.which("initdb") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None)
    if initdb is None:
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    bindir = Path(initdb).resolve().parent
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as an unprivileged user")
        try:
            import pwd

            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to start PostgreSQL as")
        as_user = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="sacae-pg-"))
    if as_user:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    data, port = base / "data", _free_port()
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"], check=True, capture_output=True
    )
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1"
    subprocess.run(
        [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l", str(base / "log"), "start"],
        check=True,
        capture_output=True,
    )
    try:
        # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3: name the psycopg2 driver explicitly
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_share_a_postgresql_study(tmp_path, postgres_url):
    two_workers_share_one_study(tmp_path, postgres_url)


@pytest.mark.slow
def test_workers_started_together_on_a_fresh_postgresql_database(tmp_path, postgres_url):
    """No study, no tables: three workers race to create Optuna's schema and the study; every trial completes."""
    workers = [worker(tmp_path, postgres_url, "-n", "16", "--n-trials", "1", "--seed", str(seed)) for seed in (1, 2, 3)]
    outputs = [finish(process) for process in workers]
    study = optuna.load_study(study_name="sacae", storage=postgres_url)
    assert [trial.state for trial in study.trials] == [COMPLETE] * 3, outputs
