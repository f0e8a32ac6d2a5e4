"""Hub sharing of SACAE without the network: stage, a faked upload into a local Hub cache, offline loading."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sb3_sacae.zoo import hub

ROOT = Path(__file__).resolve().parents[2]
ENV_ID = "PendulumPixels-v1"
REPO_ID = "tester/sacae-PendulumPixels-v1"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def run(*args: str, cwd: Path, **env: str) -> str:
    environ = {key: value for key, value in os.environ.items() if key != "SB3_SACAE_NO_ZOO_HOOK"}
    environ.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", **env)
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("hub")
    run("-m", "sb3_sacae.zoo", "train", "--algo", "sacae", "--env", ENV_ID, "-n", "32", "-f", "logs",
        "--env-kwargs", "image_size:32", "frame_stack:2", "--hyperparams", "learning_starts:8", "buffer_size:100",
        "policy_kwargs:dict(features_dim=8, net_arch=[16], n_filters=4, n_conv_layers=2)", cwd=workdir)  # fmt: skip
    return workdir / "logs"


class FakeHfApi:
    """Stands in for huggingface_hub.HfApi: an 'upload' becomes a commit in a local Hub cache."""

    calls: list[tuple[str, dict]] = []
    cache: Path

    def __init__(self, token=None):
        self.token = token

    def create_repo(self, **kwargs):
        self.calls.append(("create_repo", kwargs))
        return f"https://huggingface.co/{kwargs['repo_id']}"

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))
        repo = self.cache / f"models--{kwargs['repo_id'].replace('/', '--')}"
        shutil.copytree(kwargs["folder_path"], repo / "snapshots" / COMMIT, dirs_exist_ok=True)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(COMMIT)


@pytest.fixture(scope="module")
def pushed(trained, tmp_path_factory):
    """The trained model pushed (fake upload) into a local cache; returns (cache, staged folder)."""
    base = tmp_path_factory.mktemp("pushed")
    FakeHfApi.cache, FakeHfApi.calls = base / "cache", []
    original, original_check = hub.HfApi, hub.check_push
    hub.HfApi, hub.check_push = FakeHfApi, lambda repo_id, token=None: "tester"  # the preflight asks the real Hub
    try:
        hub.push_to_hub(trained, ENV_ID, REPO_ID, local_dir=base / "staged", n_eval_episodes=2, video_length=20)
    finally:
        hub.HfApi, hub.check_push = original, original_check
    return base / "cache", base / "staged"


def test_push_uploads_model_config_results_card_and_video(pushed):
    _, staged = pushed
    assert [name for name, _ in FakeHfApi.calls] == ["create_repo", "upload_folder"]
    names = {path.name for path in staged.iterdir()}
    assert {"sacae-PendulumPixels-v1.zip", "config.yml", "results.json", "README.md", *hub.HUB_FILES} <= names
    results = json.loads((staged / "results.json").read_text())
    assert results["n_eval_episodes"] == 2 and np.isfinite(results["mean_reward"])
    card = (staged / "README.md").read_text()
    assert "sb3-sacae" in card and f'load_from_hub("{REPO_ID}")' in card and "library_name: stable-baselines3" in card
    if hub.video_writer_available():
        assert (staged / "replay.mp4").stat().st_size > 0


def test_load_from_hub_offline_returns_a_sacae_ready_to_predict(pushed, monkeypatch):
    import huggingface_hub.constants

    from sb3_sacae import SACAE

    cache, _ = pushed
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    model = hub.load_from_hub(REPO_ID, cache_dir=cache)  # safe loader: nothing unpickled
    assert isinstance(model, SACAE)
    assert model.buffer_size == 1  # watching a model needs no replay memory
    action, _ = model.predict(model.observation_space.sample(), deterministic=True)
    assert model.action_space.contains(action)


def test_zoo_layout_download_then_enjoy(pushed, tmp_path):
    cache, _ = pushed
    run("-m", "sb3_sacae.zoo", "load_from_hub", "--algo", "sacae", "--env", ENV_ID, "-orga", "tester", "-f", "logs",
        cwd=tmp_path, HF_HUB_CACHE=str(cache))  # fmt: skip
    out = run("-m", "sb3_sacae.zoo", "enjoy", "--algo", "sacae", "--env", ENV_ID, "-f", "logs", "-n", "110", "--no-render",
              cwd=tmp_path)  # fmt: skip
    assert "Episode Reward" in out


def test_rl_zoo3_load_from_hub_survives_a_repo_without_vec_normalize(pushed, tmp_path):
    cache, staged = pushed
    assert not (staged / "vec_normalize.pkl").exists()
    out = run("-m", "sb3_sacae.zoo", "zoo_load_from_hub", "--algo", "sacae", "--env", ENV_ID, "-orga", "tester",
              "-f", "logs", cwd=tmp_path, HF_HUB_CACHE=str(cache), TRUST_REMOTE_CODE="True")  # fmt: skip
    assert "No normalization file" in out
    assert (tmp_path / "logs" / "sacae" / f"{ENV_ID}_1" / f"{ENV_ID}.zip").is_file()


def test_push_cli_stages_without_network(trained, tmp_path):
    run("-m", "sb3_sacae.zoo", "push_to_hub", "--algo", "sacae", "--env", ENV_ID, "-f", str(trained), "-orga", "tester",
        "--n-eval-episodes", "1", "--no-render", "--local-dir", "staged", "--no-upload", cwd=tmp_path)  # fmt: skip
    assert (tmp_path / "staged" / "sacae-PendulumPixels-v1.zip").is_file()
    assert not (tmp_path / "staged" / "replay.mp4").exists()


def test_unsafe_files_are_refused(tmp_path):
    """A model zip is loaded with the safe loader by default; a pickle bomb in it is not executed."""
    from sb3_sacae.zoo.hub import load_model

    model_zip = tmp_path / "sacae-evil.zip"
    import pickle
    import zipfile

    class Bomb:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    import base64

    payload = base64.b64encode(pickle.dumps(Bomb())).decode()
    data = {"policy_class": {":type:": "<class 'abc.ABCMeta'>", ":serialized:": payload}}
    with zipfile.ZipFile(model_zip, "w") as archive:
        archive.writestr("data", json.dumps(data))
    with pytest.raises((ValueError, KeyError, OSError)):  # refused, never executed
        load_model(model_zip)
    assert not (tmp_path / "pwned").exists()


def run_unchecked(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {key: value for key, value in os.environ.items() if key not in ("SB3_SACAE_NO_ZOO_HOOK", "TRUST_REMOTE_CODE")}
    environ.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", **env)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=300)


def _payloads(marker: Path) -> dict[str, tuple[str, str]]:
    """file name -> (text replacing a line of it, error expected): each would create ``marker`` if it ran."""
    return {
        "eval_normalize": ("config.yml", f"normalize: \"__import__('pathlib').Path({str(marker)!r}).touch() or {{}}\"\n"),
        "python_tag": ("args.yml", f'env_kwargs: !!python/object/apply:os.system ["touch {marker}"]\n'),
        "wrapper": ("config.yml", "env_wrapper:\n- subprocess.Popen:\n    args: [touch, " + str(marker) + "]\n"),
    }


def _with_payload(folder: Path, name: str, line: str) -> None:
    """Replace the top-level keys of ``line`` in ``folder/name`` (the rest of the genuine file stays)."""
    import yaml

    key = line.split(":")[0]
    genuine = yaml.safe_load((folder / name).read_text()) or {}
    text = line + yaml.safe_dump({other: value for other, value in genuine.items() if other != key})
    (folder / name).write_text(text)


@pytest.mark.parametrize("payload", ["eval_normalize", "python_tag", "wrapper"])
def test_a_hub_model_that_would_run_code_is_refused_by_load_from_hub(pushed, tmp_path, payload):
    _, staged = pushed
    marker = tmp_path / "pwned"
    hub_folder = tmp_path / "hub" / "sacae-evil"
    shutil.copytree(staged, hub_folder)
    _with_payload(hub_folder, *_payloads(marker)[payload])
    result = run_unchecked("-m", "sb3_sacae.zoo", "load_from_hub", "--algo", "sacae", "--env", ENV_ID,
                           "-orga", str(tmp_path / "hub"), "-name", "sacae-evil", "-f", "logs", cwd=tmp_path)  # fmt: skip
    assert result.returncode != 0 and "Refused" in result.stderr, result.stderr[-3000:]
    assert not marker.exists() and not (tmp_path / "logs").exists()


def _genuine_zoo_folder(pushed, tmp_path: Path) -> Path:
    cache, _ = pushed
    run("-m", "sb3_sacae.zoo", "load_from_hub", "--algo", "sacae", "--env", ENV_ID, "-orga", "tester", "-f", "logs",
        cwd=tmp_path, HF_HUB_CACHE=str(cache))  # fmt: skip
    return tmp_path / "logs" / "sacae" / f"{ENV_ID}_1" / ENV_ID


@pytest.mark.parametrize("payload", ["eval_normalize", "python_tag", "vecnormalize"])
def test_enjoy_refuses_a_log_folder_that_would_run_code(pushed, tmp_path, payload):
    """What rl_zoo3's own load_from_hub lays out verbatim: rl_zoo3.enjoy (patched by the hook) runs none of it."""
    import pickle

    import yaml

    marker = tmp_path / "pwned"
    config_folder = _genuine_zoo_folder(pushed, tmp_path)
    if payload == "vecnormalize":

        class Bomb:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))

        (config_folder / "vecnormalize.pkl").write_bytes(pickle.dumps(Bomb()))
        config = yaml.safe_load((config_folder / "config.yml").read_text()) or {}
        (config_folder / "config.yml").write_text(yaml.safe_dump({**config, "normalize": True}))
        expected = "SB3_SACAE_TRUST_VECNORMALIZE=1"
    else:
        _with_payload(config_folder, *_payloads(marker)[payload])
        expected = "eval()" if payload == "eval_normalize" else "SB3_SACAE_TRUST_ZOO_CONFIG=1"
    result = run_unchecked("-m", "sb3_sacae.zoo", "enjoy", "--algo", "sacae", "--env", ENV_ID, "-f", "logs", "-n", "5",
                           "--no-render", cwd=tmp_path)  # fmt: skip
    assert result.returncode != 0 and "UntrustedZooFileError" in result.stderr, result.stderr[-3000:]
    assert expected in result.stderr
    assert not marker.exists()


def _hub_folder(tmp_path: Path, metrics: dict[str, bytes], args: str = "env_kwargs: null\n") -> Path:
    """A repository as a local folder (which download() takes as is): model bytes, args.yml, train_eval_metrics.zip."""
    import zipfile

    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / f"sacae-{ENV_ID}.zip").write_bytes(b"copied, never loaded here")
    (folder / "config.yml").write_text("normalize: false\n")
    (folder / "args.yml").write_text(args)
    with zipfile.ZipFile(folder / "train_eval_metrics.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in metrics.items():
            archive.writestr(name, data)
    return folder


def test_download_extracts_only_the_metrics_rl_zoo3_writes(tmp_path):
    genuine = {"evaluations.npz": b"npz bytes", "0.monitor.csv": b"#{}\nr,l,t\n"}
    log_path = hub.download_to_zoo_folder(str(_hub_folder(tmp_path, genuine)), ENV_ID, tmp_path / "logs")
    assert {path.name for path in log_path.iterdir()} == {ENV_ID, f"{ENV_ID}.zip", *genuine}
    assert (log_path / "0.monitor.csv").read_bytes() == genuine["0.monitor.csv"]


@pytest.mark.parametrize("member", ["evil.py", "evaluations.npz.py", ".hidden.csv", "sitecustomize.pth"])
def test_download_refuses_other_members_of_the_metrics_archive(tmp_path, member):
    """A flat ``evil.py`` in the log folder is importable as ``logs.sacae.<env>_1.evil`` (cwd is on sys.path)."""
    from sb3_sacae.io import UnsafeFileError

    folder = _hub_folder(tmp_path, {"evaluations.npz": b"", member: b"print('ran')\n"})
    with pytest.raises(UnsafeFileError, match=f"holds {member!r}.*only carries evaluations.npz and \\*.csv"):
        hub.download_to_zoo_folder(str(folder), ENV_ID, tmp_path / "logs")
    assert not (tmp_path / "logs").exists()


def test_download_refuses_a_metrics_member_over_the_limit_before_inflating_it(tmp_path, monkeypatch):
    from sb3_sacae.io import FileLimitError

    folder = _hub_folder(tmp_path, {"evaluations.npz": bytes(50_000)})
    assert (folder / "train_eval_metrics.zip").stat().st_size < 1_000
    monkeypatch.setenv("SB3_SACAE_MAX_METADATA_BYTES", "10000")
    with pytest.raises(FileLimitError, match=r"evaluations.npz.*50,000.*SB3_SACAE_MAX_METADATA_BYTES"):
        hub.download_to_zoo_folder(str(folder), ENV_ID, tmp_path / "logs")
    assert not (tmp_path / "logs").exists()


def test_download_refuses_env_kwargs_naming_a_module(tmp_path):
    from sb3_sacae.zoo.safety import UntrustedZooFileError

    args = "env_kwargs:\n  env_id: logs.sacae.evil:Evil-v0\n"
    with pytest.raises(UntrustedZooFileError, match=r"'logs.sacae.evil:Evil-v0' in args.yml.*trust_remote_code=True"):
        hub.download_to_zoo_folder(str(_hub_folder(tmp_path, {}, args)), "HalfCheetahPixels-v5", tmp_path / "logs")
    assert not (tmp_path / "logs").exists()
