"""Share SACAE models on the Hugging Face Hub, independently of rl_zoo3's broken ``push_to_hub`` import.

Push a model trained with the zoo (``logs/sacae/<env>_<id>/``)::

    python -m sb3_sacae.zoo push_to_hub --algo sacae --env PendulumPixels-v1 -f logs/ -orga <user>

The repository gets ``sacae-<env>.zip``, ``config.yml``, ``env_kwargs.yml``, ``args.yml``,
``train_eval_metrics.zip`` (what ``rl_zoo3.load_from_hub`` expects), ``results.json`` (evaluation), a model
card (``README.md``, a ``huggingface_hub.ModelCard`` from ``templates/model_card.md``) that names sb3-sacae and
shows how to load the model, and ``replay.mp4`` (written by imageio, when ``imageio-ffmpeg`` is installed).
``--local-dir DIR --no-upload`` stops after staging.

Load it back, ready to ``predict`` (no replay buffer allocated, nothing unpickled)::

    from sb3_sacae.zoo.hub import load_from_hub
    model = load_from_hub("<user>/sacae-PendulumPixels-v1")

or into the zoo's folder layout for ``enjoy``: ``python -m sb3_sacae.zoo load_from_hub --algo sacae --env
PendulumPixels-v1 -orga <user> -f logs/``. Only ``create_repo`` / ``upload_folder`` and the downloads touch the
network; they need ``HF_TOKEN`` (or ``huggingface-cli login``) for uploads.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, snapshot_download

from sb3_sacae.zoo.hub_check import check_download, check_push, one_line_errors
from sb3_sacae.zoo.safety import TRUST_CONFIG_ENV_VAR, _trusted, check_env_kwargs, plain_yaml
from sb3_sacae.zoo.sampler import load_yaml

ALGO = "sacae"
# files the zoo's layout needs besides the model, and what load_from_hub() downloads
HUB_FILES = ("config.yml", "env_kwargs.yml", "args.yml", "train_eval_metrics.zip", "results.json")


def model_filename(env_id: str) -> str:
    """``sacae-<env id>.zip``, the zoo's naming (``huggingface_sb3.ModelName``)."""
    return f"{ALGO}-{env_id}.zip"


# ---------------------------------------------------------------------------------------------------- loading
def load_model(path: str | os.PathLike, *, trust_remote_code: bool = False, device: str = "auto", **kwargs: Any) -> Any:
    """Load a SACAE zip to predict with: ``buffer_size=1`` (no replay memory), safe loader unless trusted.

    :param trust_remote_code: allow SB3's unpickling loader (runs code stored in the file: trusted files only)
    """
    from sb3_sacae import SACAE

    kwargs.setdefault("buffer_size", 1)
    if "trust_remote_code" in inspect.signature(SACAE.load).parameters:
        return SACAE.load(path, device=device, trust_remote_code=trust_remote_code, **kwargs)
    if not trust_remote_code:
        raise ValueError(
            "This sb3-sacae has no safe loader (SACAE.load(..., trust_remote_code=False)), and SB3's loader unpickles "
            "code stored in the model file: pass trust_remote_code=True only for a model you trust"
        )
    return SACAE.load(path, device=device, **kwargs)


def download(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | None = None,
) -> Path:
    """The repository's model and zoo files in the local Hub cache (or ``repo_id`` itself if it is a folder)."""
    if Path(repo_id).is_dir():
        return Path(repo_id)
    folder = snapshot_download(
        repo_id,
        revision=revision,
        cache_dir=None if cache_dir is None else str(cache_dir),
        local_files_only=local_files_only,
        token=token,
        allow_patterns=["*.zip", "*.yml", "*.json", "README.md"],
        library_name="sb3-sacae",
    )
    return Path(folder)


def find_model_file(folder: Path) -> Path:
    candidates = sorted(path for path in folder.glob("*.zip") if path.name != "train_eval_metrics.zip")
    preferred = [path for path in candidates if path.name.startswith(f"{ALGO}-")]
    if not (preferred or candidates):
        raise FileNotFoundError(f"No SACAE model zip in {folder} (expected {model_filename('<env id>')})")
    return (preferred or candidates)[0]


def load_from_hub(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | None = None,
    trust_remote_code: bool = False,
    device: str = "auto",
    **load_kwargs: Any,
) -> Any:
    """Download ``repo_id`` (``"<user>/sacae-<env>"``, or a local folder) and return a ``SACAE`` ready to predict.

    :param trust_remote_code: see :func:`load_model`; models from the Hub are untrusted input
    :param load_kwargs: passed to ``SACAE.load`` (``env=...`` to evaluate or keep training)
    """
    folder = download(repo_id, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token)
    return load_model(find_model_file(folder), trust_remote_code=trust_remote_code, device=device, **load_kwargs)


def download_to_zoo_folder(
    repo_id: str,
    env_id: str,
    folder: str | os.PathLike,
    exp_id: int = 0,
    force: bool = False,
    trust_remote_code: bool = False,
    **download_kwargs: Any,
) -> Path:
    """Lay a Hub model out as ``<folder>/sacae/<env>_<id>/`` so that ``rl_zoo3.enjoy`` finds it.

    ``config.yml`` / ``args.yml`` / ``env_kwargs.yml`` are not copied: they are read without running code, checked
    (``normalize`` true/false or a mapping, wrappers and callbacks from known packages only, see
    :mod:`sb3_sacae.zoo.safety`) and rewritten as plain YAML. A file that fails a check raises
    :class:`~sb3_sacae.zoo.safety.UntrustedZooFileError` before anything is written. ``vec_normalize.pkl`` (a
    pickle) is never downloaded.

    :param trust_remote_code: accept wrappers and callbacks from any module (they are imported and run by rl_zoo3)
    """
    from sb3_sacae.zoo.safety import sanitize_zoo_files

    source = download(repo_id, **download_kwargs)
    with tempfile.TemporaryDirectory(prefix="sacae-zoo-") as checked:  # check everything before writing anything
        sanitize_zoo_files(source, checked, trust_remote_code=trust_remote_code, env_id=env_id)
        metrics = Path(checked, "train_eval_metrics")
        metrics.mkdir()
        if (source / "train_eval_metrics.zip").exists():
            extract_metrics(source / "train_eval_metrics.zip", metrics)
        return _lay_out(source, Path(checked), env_id, folder, exp_id, force)


def _metrics_member_allowed(name: str) -> bool:
    """What rl_zoo3's ``push_to_hub`` (and :func:`stage`) put into ``train_eval_metrics.zip``: ``evaluations.npz``
    and the run's ``*.csv`` monitor files, flat."""
    if name == "evaluations.npz":
        return True
    return name.endswith(".csv") and Path(name).name == name and not name.startswith(".") and "\\" not in name


def extract_metrics(path: Path, target: Path) -> list[str]:
    """Extract a Hub ``train_eval_metrics.zip`` into ``target``: only :func:`_metrics_member_allowed` names, each
    member and all of them together at most ``SB3_SACAE_MAX_METADATA_BYTES`` once inflated (checked from the zip
    headers before anything is inflated or written).

    :raises ~sb3_sacae.io.UnsafeFileError: another member name (:class:`~sb3_sacae.io.FileLimitError`: too large,
        :class:`~sb3_sacae.io.CorruptFileError`: not a zip)
    """
    from sb3_sacae.io import UnsafeFileError, read_regular_file
    from sb3_sacae.io.archives import open_zip, read_member
    from sb3_sacae.io.limits import MAX_METADATA_BYTES

    what = f"Hub metrics archive {path.name}"
    raw = read_regular_file(path, "Hub metrics archive", MAX_METADATA_BYTES)
    with open_zip(raw, what) as archive:
        infos = archive.infolist()
        for info in infos:
            if not _metrics_member_allowed(info.filename):
                raise UnsafeFileError(
                    f"Refusing {what}: it holds {info.filename!r}, but the archive only carries evaluations.npz and "
                    "*.csv monitor files. Remove that member from the repository's train_eval_metrics.zip (or delete "
                    "the archive: the model does not need it)"
                )
            MAX_METADATA_BYTES.check(info.file_size, f"member {info.filename!r} of {what}")
        MAX_METADATA_BYTES.check(sum(info.file_size for info in infos), f"the members of {what}")
        for info in infos:
            (target / info.filename).write_bytes(read_member(archive, info.filename, what, MAX_METADATA_BYTES))
    return [info.filename for info in infos]


def _lay_out(source: Path, checked: Path, env_id: str, folder: str | os.PathLike, exp_id: int, force: bool) -> Path:
    from rl_zoo3.utils import get_latest_run_id

    if exp_id == 0:
        exp_id = get_latest_run_id(os.path.join(folder, ALGO), env_id) + 1
    log_path = Path(folder, ALGO, f"{env_id}_{exp_id}") if exp_id > 0 else Path(folder, ALGO)
    if log_path.is_dir() and any(log_path.iterdir()):
        if not force:
            raise ValueError(f"{log_path} already exists: pass --force to overwrite it, or --exp-id 0 for a new folder")
        shutil.rmtree(log_path)
    config_folder = log_path / env_id
    config_folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(find_model_file(source), log_path / f"{env_id}.zip")
    for name in ("config.yml", "args.yml", "env_kwargs.yml"):
        if (checked / name).is_file():
            shutil.copy(checked / name, config_folder / name)
    for metrics_file in sorted((checked / "train_eval_metrics").glob("*")):  # extracted and checked before
        shutil.copy(metrics_file, log_path / metrics_file.name)
    print(f"Saved to {log_path}")
    return log_path


# ---------------------------------------------------------------------------------------------------- pushing
def _write_yaml(path: Path, data: Any) -> None:
    path.write_text(yaml.safe_dump(plain_yaml(data), sort_keys=True), encoding="utf-8")


def evaluate(model: Any, env: Any, n_eval_episodes: int, deterministic: bool, folder: Path) -> tuple[float, float]:
    """Evaluate and write ``results.json`` (the huggingface_sb3 format)."""
    from stable_baselines3.common.evaluation import evaluate_policy

    mean, std = evaluate_policy(model, env, n_eval_episodes=n_eval_episodes, deterministic=deterministic)
    mean_reward, std_reward = float(mean), float(std)  # type: ignore[arg-type]  # SB3 types evaluate_policy's return as a union with per-episode lists; this call returns floats
    results = {
        "mean_reward": mean_reward,
        "std_reward": std_reward,
        "is_deterministic": deterministic,
        "n_eval_episodes": n_eval_episodes,
        "eval_datetime": datetime.datetime.now().isoformat(),
    }
    (folder / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return mean_reward, std_reward


def video_writer_available() -> bool:
    """Whether imageio can write mp4 files (its ffmpeg plugin: ``pip install imageio-ffmpeg``)."""
    try:
        import imageio.v2  # noqa: F401
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


def _latest_frame(obs: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 image of the newest frame in a (channels-first or -last) stacked observation of env 0."""
    frame = np.asarray(obs[0])
    if frame.ndim == 3 and frame.shape[0] % 3 == 0 and frame.shape[0] <= 3 * 16 and frame.shape[0] < frame.shape[-1]:
        frame = frame[-3:].transpose(1, 2, 0)
    elif frame.ndim == 3 and frame.shape[-1] % 3 == 0:
        frame = frame[..., -3:]
    elif frame.ndim == 3 and frame.shape[0] == 1:  # grey, channels first
        frame = np.repeat(frame.transpose(1, 2, 0), 3, axis=2)
    return np.ascontiguousarray(frame.astype(np.uint8))


def record_replay(model: Any, env: Any, path: Path, n_steps: int, deterministic: bool, fps: int = 30) -> bool:
    """Write an mp4 of what the agent sees with imageio; False (and no file) when it cannot write videos."""
    if not video_writer_available():
        print("No video writer (pip install imageio imageio-ffmpeg): skipping replay.mp4")
        return False
    import imageio.v2 as imageio

    obs = env.reset()
    frames = [_latest_frame(obs)]
    for _ in range(n_steps):
        action, _ = model.predict(obs, deterministic=deterministic)
        obs, _, _, _ = env.step(action)
        frames.append(_latest_frame(obs))
    # H.264 in yuv420p (what browsers and the Hub play) needs even sides: repeat the last row / column of odd ones
    height, width = frames[0].shape[:2]
    frames = [np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge") for frame in frames]
    try:
        # imageio's stub rejects a list of numpy arrays, which imageio accepts
        imageio.mimwrite(path, frames, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=2)  # type: ignore[arg-type]  # imageio's stub types mimwrite's frames too narrowly
    except (OSError, RuntimeError, ValueError) as error:
        print(f"Could not encode replay.mp4 ({error}): skipping it")
        path.unlink(missing_ok=True)
        return False
    return True


def card_data(env_id: str, mean_reward: float, std_reward: float) -> ModelCardData:
    """The card's metadata: library, tags and the evaluation as a model-index entry (what the Hub shows)."""
    result = EvalResult(
        task_type="reinforcement-learning",
        task_name="reinforcement-learning",
        dataset_type=env_id,
        dataset_name=env_id,
        metric_type="mean_reward",
        metric_name="mean_reward",
        metric_value=f"{mean_reward:.2f} +/- {std_reward:.2f}",
    )
    tags = [env_id, "deep-reinforcement-learning", "reinforcement-learning", "stable-baselines3", "sb3-sacae", "sac-ae"]
    return ModelCardData(library_name="stable-baselines3", tags=tags, model_name="SACAE", eval_results=[result])


def model_card(
    repo_id: str, env_id: str, mean_reward: float, std_reward: float, hyperparams: dict, env_kwargs: dict
) -> ModelCard:
    """The model card (``README.md``): :func:`card_data` and how to load the model with sb3-sacae."""
    template = (Path(__file__).parent / "templates" / "model_card.md").read_text(encoding="utf-8")
    return ModelCard.from_template(
        card_data(env_id, mean_reward, std_reward),
        template_str=template,
        env_id=env_id,
        repo_id=repo_id,
        organization=repo_id.split("/")[0],
        mean_reward=f"{mean_reward:.2f} +/- {std_reward:.2f}",
        env_kwargs_python=repr(plain_yaml(env_kwargs)),
        hyperparams_yaml=yaml.safe_dump(plain_yaml(hyperparams), sort_keys=True),
        env_kwargs_yaml=yaml.safe_dump(plain_yaml(env_kwargs), sort_keys=True),
    )


def _read_run(
    folder: str | os.PathLike, env_id: str, exp_id: int, load_best: bool, load_checkpoint: int | None, last: bool
) -> tuple[Path, Path, Path, dict[str, Any], dict[str, Any]]:
    """Model file, log folder, config folder, ``config.yml`` and ``args.yml`` of a zoo run (read without code)."""
    from rl_zoo3.utils import get_model_path

    checkpoint = None if load_checkpoint is None else str(load_checkpoint)
    _, model_path, log_path = get_model_path(exp_id, str(folder), ALGO, _env_name(env_id), load_best, checkpoint, last)
    stats_path = Path(log_path, env_id)
    hyperparams = dict(load_yaml(stats_path / "config.yml") or {}) if (stats_path / "config.yml").is_file() else {}
    saved_args: dict[str, Any] = {}
    if (stats_path / "args.yml").is_file():
        try:
            saved_args = dict(load_yaml(stats_path / "args.yml") or {})
        except Exception:  # args holding python objects: keep what the card needs
            saved_args = {}
    # the env is made from them: the checks of enjoy (no "module:Name" id, no task keyword of sb3-sacae's ids)
    trusted = _trusted(TRUST_CONFIG_ENV_VAR)
    for name, data in (("config.yml", hyperparams), ("args.yml", saved_args)):
        if data.get("env_kwargs") is not None:
            data["env_kwargs"] = check_env_kwargs(data["env_kwargs"], f"{stats_path / name}: env_kwargs", env_id, trusted)
    return Path(model_path), Path(log_path), stats_path, hyperparams, saved_args


def _env_name(env_id: str) -> Any:
    from huggingface_sb3 import EnvironmentName

    return EnvironmentName(env_id)


def _write_run_files(out: Path, env_id: str, model_path: Path, log_path: Path, hyperparams: dict, saved_args: dict,
                     env_kwargs: dict) -> None:  # fmt: skip
    """The model, the three YAML files and ``train_eval_metrics.zip``: the zoo's layout of a Hub repository."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(model_path, out / model_filename(env_id))
    _write_yaml(out / "config.yml", hyperparams)
    _write_yaml(out / "env_kwargs.yml", env_kwargs)
    _write_yaml(out / "args.yml", {**saved_args, "env_kwargs": env_kwargs})
    with zipfile.ZipFile(out / "train_eval_metrics.zip", "w") as archive:
        for path in [log_path / "evaluations.npz", *sorted(log_path.glob("*.csv"))]:
            if path.is_file():
                archive.write(path, arcname=path.name)
    lfs = "filter=lfs diff=lfs merge=lfs -text"
    (out / ".gitattributes").write_text(f"*.zip {lfs}\n*.mp4 {lfs}\n")


def _test_env_maker(env_id: str, hyperparams: dict, stats_path: Path, env_kwargs: dict, seed: int) -> Any:
    """A function making one evaluation env as ``rl_zoo3.enjoy`` does (wrappers, frame stack, VecNormalize)."""
    from rl_zoo3.utils import create_test_env

    wrappers = ("env_wrapper", "vec_env_wrapper", "frame_stack")
    test_hyperparams = {key: value for key, value in hyperparams.items() if key in wrappers}
    normalize = bool(hyperparams.get("normalize", False))
    if normalize:
        test_hyperparams.update(normalize=True, normalize_kwargs={"norm_obs": True, "norm_reward": False})

    def make_env() -> Any:
        return create_test_env(
            _env_name(env_id).gym_id,
            n_envs=1,
            stats_path=str(stats_path) if normalize else None,
            seed=seed,
            log_dir=None,
            should_render=False,
            hyperparams=dict(test_hyperparams),
            env_kwargs=env_kwargs,
        )

    return make_env


def stage(
    folder: str | os.PathLike,
    env_id: str,
    repo_id: str,
    local_dir: str | os.PathLike,
    *,
    exp_id: int = 0,
    load_best: bool = False,
    load_checkpoint: int | None = None,
    load_last_checkpoint: bool = False,
    n_eval_episodes: int = 10,
    deterministic: bool = True,
    video_length: int = 1000,
    video: bool = True,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    device: str = "auto",
) -> Path:
    """Write everything the Hub repository will hold into ``local_dir`` (no network)."""
    model_path, log_path, stats_path, hyperparams, saved_args = _read_run(
        folder, env_id, exp_id, load_best, load_checkpoint, load_last_checkpoint
    )
    kwargs = {**(hyperparams.get("env_kwargs") or {}), **(saved_args.get("env_kwargs") or {}), **(env_kwargs or {})}
    out = Path(local_dir)
    _write_run_files(out, env_id, model_path, log_path, hyperparams, saved_args, kwargs)
    if hyperparams.get("normalize", False):
        shutil.copy(stats_path / "vecnormalize.pkl", out / "vec_normalize.pkl")
    make_env = _test_env_maker(env_id, hyperparams, stats_path, kwargs, seed)

    eval_env = make_env()
    # the zip is the user's own training output: SB3's loader is fine here (Hub downloads use load_model's safe path)
    model = load_model(model_path, trust_remote_code=True, device=device, env=eval_env)
    mean_reward, std_reward = evaluate(model, eval_env, n_eval_episodes, deterministic, out)
    eval_env.close()
    if video and video_length > 0:
        video_env = make_env()
        record_replay(model, video_env, out / "replay.mp4", video_length, deterministic)
        video_env.close()
    model_card(repo_id, env_id, mean_reward, std_reward, hyperparams, kwargs).save(out / "README.md")
    print(f"Staged {repo_id} in {out}: mean reward {mean_reward:.2f} +/- {std_reward:.2f}")
    return out


def upload(
    local_dir: str | os.PathLike,
    repo_id: str,
    commit_message: str = "Upload SACAE agent",
    token: str | None = None,
    private: bool = False,
) -> str:
    """Create the model repository if needed and upload ``local_dir``: the only network calls of a push."""
    api = HfApi(token=token)
    url = api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(local_dir), repo_type="model", commit_message=commit_message)
    print(f"Pushed to {url}")
    return str(url)


def push_to_hub(
    folder: str | os.PathLike,
    env_id: str,
    repo_id: str,
    *,
    commit_message: str = "Upload SACAE agent",
    token: str | None = None,
    private: bool = False,
    local_dir: str | os.PathLike | None = None,
    **stage_kwargs: Any,
) -> str:
    """Check that the Hub takes the push (:func:`~sb3_sacae.zoo.hub_check.check_push`), then stage a zoo-trained
    SACAE (:func:`stage`) and upload it (:func:`upload`).

    :raises ~sb3_sacae.zoo.hub_check.HubUnavailableError: offline, no token, Hub unreachable or token refused,
        found in about a second, before the evaluation and the video
    """
    check_push(repo_id, token=token)
    with tempfile.TemporaryDirectory(prefix="sacae-hub-") as tmp:
        staged = stage(folder, env_id, repo_id, local_dir or tmp, **stage_kwargs)
        return upload(staged, repo_id, commit_message=commit_message, token=token, private=private)


# ---------------------------------------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    from rl_zoo3.utils import StoreDict

    parser = argparse.ArgumentParser(prog="python -m sb3_sacae.zoo", description="SACAE <-> Hugging Face Hub")
    commands = parser.add_subparsers(dest="command", required=True)
    push = commands.add_parser("push_to_hub", help="evaluate, stage and upload a zoo-trained SACAE")
    push.add_argument("--env", required=True)
    push.add_argument("-f", "--folder", required=True)
    push.add_argument("--algo", default=ALGO, choices=[ALGO])
    push.add_argument("-orga", "--organization", required=True)
    push.add_argument("-name", "--repo-name", help="repository name (default sacae-<env>)")
    push.add_argument("-m", "--commit-message", default="Upload SACAE agent")
    push.add_argument("-n", "--n-timesteps", type=int, default=1000, help="length of replay.mp4 in steps")
    push.add_argument("--n-eval-episodes", type=int, default=10)
    push.add_argument("--exp-id", type=int, default=0)
    push.add_argument("--load-best", action="store_true")
    push.add_argument("--load-checkpoint", type=int)
    push.add_argument("--load-last-checkpoint", action="store_true")
    push.add_argument("--stochastic", action="store_true")
    push.add_argument("--deterministic", action="store_true", help="(default; kept for rl_zoo3 compatibility)")
    push.add_argument("--no-render", action="store_true", help="no replay.mp4")
    push.add_argument("--seed", type=int, default=0)
    push.add_argument("--device", default="auto")
    push.add_argument("--private", action="store_true")
    push.add_argument("--env-kwargs", type=str, nargs="+", action=StoreDict)
    push.add_argument("--local-dir", help="stage here (kept) instead of a temporary folder")
    push.add_argument("--no-upload", action="store_true", help="stage only (with --local-dir): no network")
    load = commands.add_parser("load_from_hub", help="download a SACAE repository into the zoo's log folder")
    load.add_argument("--env", required=True)
    load.add_argument("-f", "--folder", required=True)
    load.add_argument("--algo", default=ALGO, choices=[ALGO])
    load.add_argument("-orga", "--organization", default="sb3")
    load.add_argument("-name", "--repo-name", help="repository name (default sacae-<env>)")
    load.add_argument("--exp-id", type=int, default=0)
    load.add_argument("--force", action="store_true")
    load.add_argument("--revision")
    load.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="accept env/vec-env wrappers and callbacks from any module in config.yml (rl_zoo3 imports and runs them)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    repo_id = f"{args.organization}/{args.repo_name or model_filename(args.env)[: -len('.zip')]}"
    if args.command == "load_from_hub":
        from sb3_sacae.serialization import UnsafeFileError

        try:
            with one_line_errors(repo_id, push=False):
                check_download(repo_id, revision=args.revision)  # before anything is downloaded or written
                download_to_zoo_folder(
                    repo_id,
                    args.env,
                    args.folder,
                    exp_id=args.exp_id,
                    force=args.force,
                    revision=args.revision,
                    trust_remote_code=args.trust_remote_code,
                )
        except UnsafeFileError as error:
            raise SystemExit(f"Refused {repo_id}: {error}") from error
        return
    stage_kwargs = dict(
        exp_id=args.exp_id,
        load_best=args.load_best,
        load_checkpoint=args.load_checkpoint,
        load_last_checkpoint=args.load_last_checkpoint,
        n_eval_episodes=args.n_eval_episodes,
        deterministic=not args.stochastic,
        video_length=args.n_timesteps,
        video=not args.no_render,
        seed=args.seed,
        env_kwargs=args.env_kwargs,
        device=args.device,
    )
    if args.no_upload:
        if not args.local_dir:
            raise SystemExit("--no-upload needs --local-dir")
        stage(args.folder, args.env, repo_id, args.local_dir, **stage_kwargs)
        return
    with one_line_errors(repo_id, push=True):
        push_to_hub(
            args.folder,
            args.env,
            repo_id,
            commit_message=args.commit_message,
            private=args.private,
            local_dir=args.local_dir,
            **stage_kwargs,
        )


if __name__ == "__main__":
    main()
