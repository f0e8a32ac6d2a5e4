"""
Demonstrations: recorded episodes in a pickle-free ``.npz`` format, replay-buffer pre-filling and pretraining.

Record episodes with a trained model, a scripted policy or random actions, save them, then start a new agent
from them::

    from sb3_sacae.demonstrations import add_demonstrations, pretrain, record_demonstrations

    record_demonstrations(env, expert, n_episodes=10, path="demos/expert.npz")
    model = SACAE("CnnPolicy", env, learning_starts=0)
    add_demonstrations(model, ["demos/expert.npz"])   # replay_buffer.add(), transition by transition
    pretrain(model, gradient_steps=1_000)             # model.train() before any interaction
    model.learn(10_000)

File format (version 1)
-----------------------
One ``.npz`` archive (a zip of ``.npy`` arrays, written with ``np.savez_compressed`` and read with
``np.load(allow_pickle=False)``: no entry can hold an object array or a pickle, so loading runs no code).
``N`` transitions, in the order they happened; episodes are contiguous.

- ``observations`` (N, \\*obs_shape), the env's observation dtype (uint8 for pixels): observation before the action.
- ``actions`` (N, \\*action_shape) float32: the action given to ``env.step()``, in the env's own units (not
  rescaled to [-1, 1]; :func:`add_demonstrations` rescales Box actions as SB3 does before storing them).
- ``rewards`` (N,) float32.
- ``terminated`` (N,) bool: the episode ended in a terminal state (no bootstrapping).
- ``truncated`` (N,) bool: the episode was cut by a time limit (bootstrapping continues).
- ``episode_starts`` (N,) bool: True on the first transition of each episode (always on row 0). A new episode
  may start without the previous one being terminated or truncated (a recording stopped mid-episode).
- Next observations, in one of two layouts (``metadata["next_observations"]``):

  - ``"shifted"`` (written whenever it applies): ``final_observations`` (E, \\*obs_shape), the next observation of
    the last transition of each of the E episodes. Every other next observation is the following row's
    observation, so it is not stored twice: half the size for pixels.
  - ``"stored"``: ``next_observations`` (N, \\*obs_shape), for transitions whose next observation is not the next
    row's observation.

  :func:`load_demonstrations` always returns ``next_observations`` (N, \\*obs_shape).
- ``metadata``: a 0-d unicode array holding a JSON object: ``format`` (``"sb3_sacae.demonstrations"``),
  ``version`` (1), ``observation_shape``, ``observation_dtype``, ``action_shape``, ``action_dtype``,
  ``n_transitions``, ``n_episodes``, ``next_observations``, plus what the recorder knew: ``env_id``,
  ``action_repeat``, ``frame_stack``, ``observation_space``, ``action_space`` (their ``repr``),
  ``sb3_sacae_version``, and any JSON values passed as ``metadata=``.

Pixel frame stacks compress well with the ``"shifted"`` layout: 100 agent steps of ``PendulumPixels-v1`` take
about 676 bytes per transition at 84 px (63,504 raw) and 251 at 64 px (36,864 raw).
"""

import json
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.logger import HumanOutputFormat, KVWriter, Logger
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize, unwrap_vec_wrapper

from sb3_sacae import __version__
from sb3_sacae.io.archives import read_npz
from sb3_sacae.io.errors import CorruptFileError, UnsafeFileError
from sb3_sacae.io.files import atomic_write, read_regular_file
from sb3_sacae.io.limits import MAX_ARRAY_BYTES, MAX_METADATA_BYTES, Limit

__all__ = [
    "DEMONSTRATIONS_FORMAT",
    "DEMONSTRATIONS_VERSION",
    "add_demonstrations",
    "load_demonstrations",
    "pretrain",
    "record_demonstrations",
    "save_demonstrations",
]

DEMONSTRATIONS_FORMAT = "sb3_sacae.demonstrations"
DEMONSTRATIONS_VERSION = 1
_FLAGS = ("terminated", "truncated", "episode_starts")
_REQUIRED_METADATA = ("observation_shape", "observation_dtype", "action_shape", "n_transitions")
_FILE_KEYS = {"observations", "actions", "rewards", *_FLAGS, "metadata"}
_RESERVED_METADATA = (
    "format",
    "version",
    "observation_shape",
    "observation_dtype",
    "action_shape",
    "action_dtype",
    "n_transitions",
    "n_episodes",
    "next_observations",
)

Demonstrations = dict[str, Any]


# --- Checks -------------------------------------------------------------------------------------------------


def _check_transitions(data: Mapping[str, Any], source: str) -> int:
    """Check the arrays of ``data`` against each other (lengths, dtypes, episode flags); return N."""
    observations, next_observations = data["observations"], data["next_observations"]
    n = len(observations)
    for key in ("actions", "rewards", "next_observations", *_FLAGS):
        if len(data[key]) != n:
            raise ValueError(
                f"{source}: '{key}' has {len(data[key])} rows but 'observations' has {n}: "
                "every array needs one row per transition"
            )
    for key, array in data.items():
        if isinstance(array, np.ndarray) and array.dtype.hasobject:
            raise TypeError(f"{source}: '{key}' is an object array; demonstrations hold numeric arrays only")
    if (next_observations.shape, next_observations.dtype) != (observations.shape, observations.dtype):
        raise ValueError(
            f"{source}: 'next_observations' is {next_observations.shape} {next_observations.dtype} but 'observations' is "
            f"{observations.shape} {observations.dtype}: both come from the same observation space"
        )
    expected = {"actions": np.float32, "rewards": np.float32, **dict.fromkeys(_FLAGS, np.bool_)}
    for key, dtype in expected.items():
        if data[key].dtype != dtype:
            raise ValueError(f"{source}: '{key}' is {data[key].dtype}, expected {np.dtype(dtype)}")
    if data["rewards"].ndim != 1 or any(data[key].ndim != 1 for key in _FLAGS):
        raise ValueError(f"{source}: 'rewards', 'terminated', 'truncated' and 'episode_starts' must be 1-D arrays of length N")
    if not np.all(np.isfinite(data["rewards"])) or not np.all(np.isfinite(data["actions"])):
        raise ValueError(f"{source}: rewards and actions must be finite (found NaN or inf)")
    if n > 0 and not data["episode_starts"][0]:
        raise ValueError(f"{source}: 'episode_starts' must be True on the first transition")
    ended = data["terminated"][:-1] | data["truncated"][:-1]
    if np.any(ended & ~data["episode_starts"][1:]):
        row = int(np.flatnonzero(ended & ~data["episode_starts"][1:])[0])
        raise ValueError(
            f"{source}: transition {row} is terminated or truncated but transition {row + 1} does not start an episode "
            "(set episode_starts there)"
        )
    return n


def _check_observation_values(
    observations: np.ndarray, next_observations: np.ndarray, obs_space: spaces.Box, source: str
) -> None:
    """Observations must be finite and inside the space's bounds (per-feature min / max: no array-sized temporaries)."""
    if len(observations) == 0:
        return
    for name, array in (("observations", observations), ("next_observations", next_observations)):
        low, high = array.min(axis=0), array.max(axis=0)  # NaN propagates through min / max
        if np.issubdtype(array.dtype, np.floating) and not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError(
                f"The demonstrations in {source} do not fit this model: '{name}' hold NaN or inf values; "
                "record them again (or drop the affected episodes) and save again"
            )
        if np.any(low < obs_space.low) or np.any(high > obs_space.high):
            raise ValueError(
                f"The demonstrations in {source} do not fit this model: '{name}' lie outside the observation space "
                f"bounds [{obs_space.low.min()}, {obs_space.high.max()}] ({obs_space}); record them with the same "
                "environment and wrappers (the same normalization)"
            )


def _space_mismatch(source: str, what: str, found: str, expected: str, fix: str) -> ValueError:
    return ValueError(
        f"The demonstrations in {source} do not fit this model: {what} {found}, but the model expects {expected}; {fix}"
    )


def _fit_to_model(data: Demonstrations, model: OffPolicyAlgorithm, source: str) -> Demonstrations:
    """
    Check observations and actions against the model's spaces; transpose channel-last images when the model
    sees them channel-first (SB3's VecTransposeImage); rescale Box actions to [-1, 1] as SB3 stores them.
    """
    obs_space, action_space = model.observation_space, model.action_space
    if not isinstance(obs_space, spaces.Box):
        raise ValueError(
            f"add_demonstrations supports Box observation spaces, the model has {obs_space}: "
            "fill its replay buffer with replay_buffer.add() directly"
        )
    observations, next_observations = data["observations"], data["next_observations"]
    shape, expected_shape = observations.shape[1:], tuple(obs_space.shape)
    channel_last = shape[-1:] + shape[:-1] if len(shape) == 3 else None
    if shape != expected_shape and channel_last == expected_shape and is_image_space(obs_space):
        # Recorded from the raw channel-last env; SB3 wrapped the model's env in VecTransposeImage
        observations, next_observations = np.moveaxis(observations, -1, 1), np.moveaxis(next_observations, -1, 1)
    elif shape != expected_shape:
        raise _space_mismatch(
            source,
            "observations have shape",
            str(shape),
            f"{expected_shape} ({obs_space})",
            "record them with the same environment and wrappers (image_size, frame_stack, channels_first)",
        )
    if observations.dtype != obs_space.dtype:
        raise _space_mismatch(
            source, "observations are", str(observations.dtype), str(obs_space.dtype), "record them with the same environment"
        )
    _check_observation_values(observations, next_observations, obs_space, source)

    actions = data["actions"]
    if isinstance(action_space, spaces.Box):
        if actions.shape[1:] != action_space.shape:
            raise _space_mismatch(
                source,
                "actions have shape",
                str(actions.shape[1:]),
                f"{action_space.shape} ({action_space})",
                "record them with the same environment",
            )
        outside = (actions < action_space.low) | (actions > action_space.high)
        if np.any(outside):
            n_outside = int(np.any(outside.reshape(len(actions), -1), axis=1).sum())
            raise ValueError(
                f"The demonstrations in {source} do not fit this model: {n_outside} of {len(actions)} actions lie outside "
                f"the action space {action_space}; clip them (np.clip(actions, low, high)), as SB3's predict() does, "
                "and save again"
            )
        buffer_actions = model.policy.scale_action(actions).astype(np.float32)
    elif isinstance(action_space, spaces.Discrete):
        if actions.shape[1:] not in ((), (1,)):
            raise _space_mismatch(
                source,
                "actions have shape",
                str(actions.shape[1:]),
                f"() ({action_space})",
                "record them with the same environment",
            )
        flat = actions.reshape(len(actions))
        if np.any((flat != np.round(flat)) | (flat < action_space.start) | (flat >= action_space.start + action_space.n)):
            raise ValueError(
                f"The demonstrations in {source} do not fit this model: its actions must be integers in "
                f"[{action_space.start}, {action_space.start + action_space.n}) ({action_space}); "
                "record them with the same environment"
            )
        buffer_actions = flat.reshape(len(flat), 1)
    else:
        raise ValueError(f"add_demonstrations supports Box and Discrete action spaces, the model has {action_space}")
    return {**data, "observations": observations, "next_observations": next_observations, "actions": buffer_actions}


# --- Files --------------------------------------------------------------------------------------------------


def _json_value(value: Any, key: str) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"metadata['{key}'] is not JSON-serializable ({error}): demonstrations metadata is plain JSON"
        ) from error
    return value


def save_demonstrations(
    path: str | os.PathLike,
    observations: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    next_observations: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    episode_starts: np.ndarray,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """
    Write transitions to a compressed ``.npz`` (format in the module docstring), atomically.

    ``save_demonstrations(path, **load_demonstrations(other))`` copies a file.

    :param path: Destination; ``.npz`` is appended when the path has no suffix
    :param observations: (N, \\*obs_shape) observations before each action, in the env's dtype
    :param actions: (N, \\*action_shape) actions given to the env (converted to float32)
    :param rewards: (N,) rewards (converted to float32)
    :param next_observations: (N, \\*obs_shape) observations after each action (the terminal one at episode ends)
    :param terminated: (N,) episode ended in a terminal state
    :param truncated: (N,) episode cut by a time limit
    :param episode_starts: (N,) first transition of each episode
    :param metadata: JSON values stored with the transitions (e.g. ``env_id``, ``action_repeat``); the format's own
        keys (shapes, dtypes, counts) are computed and override the same keys given here
    :return: The path written
    """
    data = {
        "observations": np.asarray(observations),
        "actions": np.asarray(actions, dtype=np.float32),
        "rewards": np.asarray(rewards, dtype=np.float32).reshape(-1),
        "next_observations": np.asarray(next_observations),
    }
    for key, flags in zip(_FLAGS, (terminated, truncated, episode_starts), strict=True):
        flags = np.asarray(flags).reshape(-1)
        if flags.dtype != np.bool_ and not np.all((flags == 0) | (flags == 1)):
            raise ValueError(f"'{key}' must hold booleans (or 0/1), got values {np.unique(flags)[:5]}")
        data[key] = flags.astype(np.bool_)
    n = _check_transitions(data, "save_demonstrations")

    starts = np.flatnonzero(data["episode_starts"])
    last_rows = np.append(starts[1:] - 1, n - 1) if n else starts
    following = np.ones(n, dtype=bool)
    following[last_rows] = False  # rows whose next observation should be the next row's observation
    rows = np.flatnonzero(following)
    shifted = np.array_equal(data["next_observations"][rows], data["observations"][rows + 1])
    arrays = {key: data[key] for key in ("observations", "actions", "rewards", *_FLAGS)}
    if shifted:
        arrays["final_observations"] = data["next_observations"][last_rows]
    else:
        arrays["next_observations"] = data["next_observations"]

    meta = {key: _json_value(value, key) for key, value in (metadata or {}).items() if key not in _RESERVED_METADATA}
    meta.update(
        format=DEMONSTRATIONS_FORMAT,
        version=DEMONSTRATIONS_VERSION,
        observation_shape=list(data["observations"].shape[1:]),
        observation_dtype=str(data["observations"].dtype),
        action_shape=list(data["actions"].shape[1:]),
        action_dtype="float32",
        n_transitions=n,
        n_episodes=len(starts),
        next_observations="shifted" if shifted else "stored",
    )
    meta.setdefault("sb3_sacae_version", __version__)
    path = Path(path)
    if not path.suffix:
        path = path.with_name(path.name + ".npz")
    with atomic_write(path) as file:
        np.savez_compressed(file, allow_pickle=False, metadata=np.array(json.dumps(meta)), **arrays)
    return path


def load_demonstrations(path: str | os.PathLike) -> Demonstrations:
    """
    Read a file written by :func:`save_demonstrations` or :func:`record_demonstrations`, without pickle.

    :return: ``observations``, ``actions``, ``rewards``, ``next_observations``, ``terminated``, ``truncated``,
        ``episode_starts`` (numpy arrays, N rows each) and ``metadata`` (a dict)
    :raises UnsafeFileError: For anything but an ``.npz`` of plain arrays (pickles, object arrays); nothing in the
        file is executed
    :raises UnsafeFileError: Also (as :class:`~sb3_sacae.io.CorruptFileError`, a ``ValueError``) when arrays are
        missing, have the wrong shape or dtype, or disagree with the metadata; and when the file is not a regular
        file or its arrays exceed ``SB3_SACAE_MAX_ARRAY_BYTES`` or the memory available (checked before reading)
    """
    try:
        return _read_demonstrations(path)
    except UnsafeFileError:
        raise
    except (TypeError, IndexError, KeyError, ValueError, AttributeError, OverflowError) as error:
        raise CorruptFileError(f"Refusing to load {path}: {type(error).__name__}: {error}") from error


def _read_demonstrations(path: str | os.PathLike) -> Demonstrations:
    source = str(path)
    raw = read_regular_file(path, "the demonstrations", MAX_ARRAY_BYTES)
    if not raw.startswith(b"PK"):
        raise UnsafeFileError(
            f"Refusing to load {source}: it is not an .npz archive (a pickle?); "
            "demonstrations are .npz files of plain arrays"
        )
    # every member's shape and dtype is checked from its header, and the total against the limits, before reading
    metadata_limit = Limit(MAX_METADATA_BYTES.variable, MAX_METADATA_BYTES.default * 4, "bytes (metadata, as UTF-32)")
    entries = read_npz(raw, source, member_limits={"metadata": metadata_limit})
    if "metadata" not in entries or entries["metadata"].dtype.kind != "U" or entries["metadata"].shape != ():
        raise CorruptFileError(f"{source} is an .npz file but not sb3_sacae demonstrations (no JSON 'metadata' entry)")
    try:
        meta = json.loads(str(entries.pop("metadata")))
    except (ValueError, RecursionError) as error:
        raise CorruptFileError(f"{source}: the demonstrations metadata is not JSON ({error})") from error
    if not isinstance(meta, dict) or meta.get("format") != DEMONSTRATIONS_FORMAT:
        raise CorruptFileError(
            f"{source} is not sb3_sacae demonstrations (format {meta.get('format') if isinstance(meta, dict) else meta!r})"
        )
    if meta.get("version") != DEMONSTRATIONS_VERSION:
        raise CorruptFileError(
            f"{source} has demonstrations format version {meta.get('version')}; this sb3_sacae reads version "
            f"{DEMONSTRATIONS_VERSION}: upgrade sb3_sacae"
        )

    layout = meta.get("next_observations")
    next_key = {"shifted": "final_observations", "stored": "next_observations"}.get(str(layout))
    if next_key is None:
        raise CorruptFileError(f"{source}: metadata 'next_observations' is {layout!r}, expected 'shifted' or 'stored'")
    expected_keys = (_FILE_KEYS - {"metadata"}) | {next_key}
    if set(entries) != expected_keys:
        raise CorruptFileError(
            f"{source}: arrays {sorted(entries)} do not match the format, expected {sorted(expected_keys)} "
            f"(missing {sorted(expected_keys - set(entries))}, unexpected {sorted(set(entries) - expected_keys)})"
        )
    missing = [key for key in _REQUIRED_METADATA if key not in meta]
    if missing:
        raise CorruptFileError(
            f"{source}: the metadata lacks {missing}; it is not a complete sb3_sacae demonstrations file "
            "(write it with save_demonstrations)"
        )
    observations = entries["observations"]
    try:
        described = (tuple(meta["observation_shape"]), str(meta["observation_dtype"]), tuple(meta["action_shape"]))
    except TypeError as error:
        raise CorruptFileError(f"{source}: metadata 'observation_shape' and 'action_shape' must be lists ({error})") from error
    found = (observations.shape[1:], str(observations.dtype), entries["actions"].shape[1:])
    if described != found or meta.get("n_transitions") != len(observations):
        raise CorruptFileError(
            f"{source}: metadata describes observations {described[:2]}, actions {described[2]} and "
            f"{meta.get('n_transitions')} transitions, the arrays hold {found[:2]}, {found[2]} and {len(observations)}"
        )

    n = len(observations)
    if layout == "shifted":
        finals = entries.pop("final_observations")
        starts = np.flatnonzero(entries["episode_starts"])
        if n and not entries["episode_starts"][0]:
            raise CorruptFileError(f"{source}: 'episode_starts' must be True on the first transition")
        if (len(finals), finals.shape[1:], finals.dtype) != (len(starts), observations.shape[1:], observations.dtype):
            raise CorruptFileError(
                f"{source}: 'final_observations' is {finals.shape} {finals.dtype}, expected one observation per episode "
                f"({len(starts)}, {observations.shape[1:]}) {observations.dtype}"
            )
        next_observations = np.empty_like(observations)
        if n:
            next_observations[:-1] = observations[1:]
            next_observations[np.append(starts[1:] - 1, n - 1)] = finals
        entries["next_observations"] = next_observations
    try:
        _check_transitions(entries, source)
    except ValueError as error:
        raise CorruptFileError(str(error)) from error
    return {
        key: entries[key]
        for key in ("observations", "actions", "rewards", "next_observations", "terminated", "truncated", "episode_starts")
    } | {"metadata": meta}


# --- Recording ----------------------------------------------------------------------------------------------


def _env_info(venv: VecEnv) -> dict[str, Any]:
    """What the recorder can tell about the env: id, action repeat, frame stack and spaces."""
    from sb3_sacae.buffers import detect_frame_stack, vec_env_attr

    info: dict[str, Any] = {"observation_space": repr(venv.observation_space), "action_space": repr(venv.action_space)}
    for key, attr, convert in (("env_id", "spec", lambda spec: spec.id), ("action_repeat", "action_repeat", int)):
        values = vec_env_attr(venv, attr, indices=0)
        try:
            info[key] = convert(values[0]) if values is not None and values[0] is not None else None
        except (AttributeError, TypeError, ValueError):
            info[key] = None
    info["frame_stack"] = detect_frame_stack(venv)
    return info


def record_demonstrations(
    env: Any,
    policy: BaseAlgorithm | BasePolicy | Callable[[np.ndarray], Any] | None,
    n_episodes: int,
    path: str | os.PathLike | None = None,
    deterministic: bool = True,
    seed: int | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Demonstrations:
    """
    Run ``n_episodes`` complete episodes and record their transitions (and save them when ``path`` is given).

    :param env: A Gymnasium env or an SB3 VecEnv (any number of envs; episodes still running when the
        ``n_episodes``-th ends are dropped). Record from the env without ``VecNormalize``: the file holds raw
        observations and rewards, which is what SB3 stores in its replay buffer.
    :param policy: What acts: a trained SB3 model (``SACAE``, ``SAC``, ...) or policy, used through
        ``predict(obs, deterministic=deterministic)``; a callable taking one observation and returning one action
        (a scripted expert); or ``None`` for uniformly random actions (``env.action_space.sample()``). Box
        actions are clipped to the action space, as SB3's ``predict()`` does.
    :param n_episodes: Number of complete episodes to record
    :param path: Where to save them (see :func:`save_demonstrations`); ``None`` only returns them
    :param deterministic: Passed to ``predict()`` of an SB3 model or policy
    :param seed: Seeds the env's first reset and the random actions
    :param metadata: Extra JSON values stored in the file (``env_id``, ``action_repeat`` and ``frame_stack`` are
        read from the env when it has them)
    :return: The transitions, as :func:`load_demonstrations` returns them
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be at least 1, got {n_episodes}")
    venv = env if isinstance(env, VecEnv) else DummyVecEnv([lambda: env])
    if not isinstance(venv.observation_space, spaces.Box):
        raise ValueError(f"record_demonstrations records Box observations, the env has {venv.observation_space}")
    if unwrap_vec_wrapper(venv, VecNormalize) is not None:
        raise ValueError(
            "record_demonstrations got a VecNormalize-wrapped env: record from the env without VecNormalize "
            "(demonstrations hold raw observations and rewards, as SB3's replay buffer does)"
        )
    if seed is not None:
        venv.seed(seed)
        venv.action_space.seed(seed)
    episodes = _run_episodes(venv, _actor(venv, policy, deterministic), n_episodes)
    steps = [step for episode in episodes for step in episode]
    columns = list(zip(*steps, strict=True))
    data = {
        "observations": np.stack(columns[0]),
        "actions": np.stack(columns[1]).astype(np.float32),
        "rewards": np.asarray(columns[2], dtype=np.float32),
        "next_observations": np.stack(columns[3]),
        "terminated": np.asarray(columns[4], dtype=bool),
        "truncated": np.asarray(columns[5], dtype=bool),
        "episode_starts": np.concatenate([np.arange(len(episode)) == 0 for episode in episodes]),
    }
    meta = {**_env_info(venv), **(metadata or {})}
    if path is not None:
        return load_demonstrations(save_demonstrations(path, **data, metadata=meta))
    _check_transitions(data, "record_demonstrations")
    return {**data, "metadata": meta}


def _actor(
    venv: VecEnv, policy: BaseAlgorithm | BasePolicy | Callable[[np.ndarray], Any] | None, deterministic: bool
) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a batch of observations to a batch of actions inside the action space (see ``policy``)."""
    action_space = venv.action_space
    if policy is not None and not isinstance(policy, (BaseAlgorithm, BasePolicy)) and not callable(policy):
        raise TypeError(
            f"policy must be an SB3 model or policy, a callable obs -> action, or None; got {type(policy).__name__}"
        )

    def act(obs: np.ndarray) -> np.ndarray:
        if policy is None:
            actions = np.stack([np.asarray(action_space.sample()) for _ in range(venv.num_envs)])
        elif isinstance(policy, (BaseAlgorithm, BasePolicy)):
            actions, _ = policy.predict(obs, deterministic=deterministic)
        else:
            actions = np.stack([np.asarray(policy(single_obs)) for single_obs in obs])
        actions = np.asarray(actions).reshape(venv.num_envs, *(action_space.shape or ()))
        if isinstance(action_space, spaces.Box):
            actions = np.clip(actions, action_space.low, action_space.high)
        return actions

    return act


def _run_episodes(venv: VecEnv, act: Callable[[np.ndarray], np.ndarray], n_episodes: int) -> list[list[tuple]]:
    """The first ``n_episodes`` episodes to end, each a list of (obs, action, reward, next_obs, terminated, truncated)."""
    running: list[list[tuple]] = [[] for _ in range(venv.num_envs)]
    episodes: list[list[tuple]] = []
    obs = np.asarray(venv.reset())
    while len(episodes) < n_episodes:
        actions = act(obs)
        step_obs, rewards, dones, infos = venv.step(actions)
        next_obs = np.asarray(step_obs)
        for i in range(venv.num_envs):
            truncated = bool(dones[i] and infos[i].get("TimeLimit.truncated", False))
            terminated = bool(dones[i]) and not truncated
            final = infos[i]["terminal_observation"] if dones[i] else next_obs[i]
            running[i].append((obs[i], actions[i], rewards[i], np.array(final), terminated, truncated))
            if dones[i]:
                if len(episodes) < n_episodes:
                    episodes.append(running[i])
                running[i] = []
        obs = next_obs
    return episodes


# --- Pre-filling and pretraining ----------------------------------------------------------------------------


def _concatenate(parts: list[tuple[str, Demonstrations]]) -> Demonstrations:
    keys = ("observations", "actions", "rewards", "next_observations", "terminated", "truncated", "episode_starts")
    return {key: np.concatenate([part[key] for _, part in parts]) for key in keys}


def add_demonstrations(
    model: OffPolicyAlgorithm,
    demonstrations: str | os.PathLike | Demonstrations | Iterable[str | os.PathLike | Demonstrations],
) -> int:
    """
    Insert recorded transitions into ``model.replay_buffer`` with ``replay_buffer.add()``, in order, exactly as
    SB3's ``learn()`` would have stored them: Box actions rescaled to [-1, 1] (``policy.scale_action``), the
    ``done`` flag set on terminated or truncated transitions, and timeouts passed as
    ``infos=[{"TimeLimit.truncated": truncated and not terminated}]``, so that a buffer with
    ``handle_timeout_termination`` keeps bootstrapping through time limits. Works with SB3's ``ReplayBuffer``
    (``optimize_memory_usage`` included) and with :class:`sb3_sacae.buffers.FrameStackReplayBuffer`.

    Every file is checked against the model before anything is added: observation shape and dtype, action
    shape and bounds. Observations recorded channel-last from the raw env are transposed when the model sees them
    channel-first (SB3 wraps such envs in ``VecTransposeImage``).

    With ``n_envs > 1`` the buffer takes one transition per env at each ``add()``: the transitions are dealt to
    the envs in ``n_envs`` contiguous runs (each env's column continues whole episodes, as a live env would) and the
    last ``N % n_envs`` transitions, fewer than ``n_envs``, are left out with a warning.

    The counters (``num_timesteps``, episodes) do not change: they count interaction with the env. With a
    prefilled buffer you usually want ``learning_starts=0`` (otherwise ``learn()`` still takes ``learning_starts``
    random actions before the policy acts and training starts).

    :param model: An off-policy SB3 model (``SACAE``, ``SAC``, ``TD3``, ...) with its replay buffer
    :param demonstrations: A path, a dict as returned by :func:`load_demonstrations`, or a list of them (all are
        loaded and checked before the first is added: for sets larger than memory, call this once per file)
    :return: The number of transitions added
    """
    buffer = model.replay_buffer
    if not isinstance(buffer, ReplayBuffer) or isinstance(buffer, DictReplayBuffer):
        raise TypeError(
            f"add_demonstrations fills a ReplayBuffer or FrameStackReplayBuffer, the model has {type(buffer).__name__}"
        )
    items = [demonstrations] if isinstance(demonstrations, (str, os.PathLike, Mapping)) else list(demonstrations)
    parts = []
    for item in items:
        if isinstance(item, Mapping):
            data, source = dict(item), "the given demonstrations"
            _check_transitions(data, source)
        else:
            data, source = load_demonstrations(item), str(item)
        parts.append((source, _fit_to_model(data, model, source)))
    if not parts:
        return 0
    data = parts[0][1] if len(parts) == 1 else _concatenate(parts)

    n_envs = buffer.n_envs
    per_env = len(data["observations"]) // n_envs
    left_out = len(data["observations"]) - per_env * n_envs
    if left_out:
        warnings.warn(
            f"add_demonstrations: {left_out} of {len(data['observations'])} transitions left out: a buffer for {n_envs} envs "
            f"takes {n_envs} transitions per add()",
            stacklevel=2,
        )
    if per_env > buffer.buffer_size:
        warnings.warn(
            f"add_demonstrations: {per_env * n_envs} transitions exceed the buffer's capacity "
            f"({buffer.buffer_size * n_envs}); only the last ones stay",
            stacklevel=2,
        )
    dones = data["terminated"] | data["truncated"]
    timeouts = data["truncated"] & ~data["terminated"]
    for step in range(per_env):
        rows = step + per_env * np.arange(n_envs)
        buffer.add(
            data["observations"][rows],
            data["next_observations"][rows],
            data["actions"][rows],
            data["rewards"][rows],
            dones[rows],
            [{"TimeLimit.truncated": bool(timeout)} for timeout in timeouts[rows]],
        )
    return per_env * n_envs


def pretrain(
    model: OffPolicyAlgorithm,
    gradient_steps: int,
    batch_size: int | None = None,
    log_interval: int = 1000,
) -> OffPolicyAlgorithm:
    """
    Run ``model.train()`` on the replay buffer's contents (demonstrations) before any interaction.

    Each gradient step is one ordinary update (for SACAE: critic, actor and temperature, targets, autoencoder,
    each at its interval), counted in ``model._n_updates`` so the update intervals and ``train/n_updates`` continue
    across the following ``learn()``. The learning rate is the schedule's initial value. ``num_timesteps`` stays
    as it is, so ``learning_starts`` still counts environment steps: set ``learning_starts=0`` to let the
    pretrained policy act from the first step.

    :param model: An off-policy SB3 model whose replay buffer holds transitions (see :func:`add_demonstrations`)
    :param gradient_steps: Number of gradient steps
    :param batch_size: Minibatch size (default: the model's ``batch_size``)
    :param log_interval: Dump the logger's ``train/`` values every this many gradient steps (``0``: once at the
        end). Before the first ``learn()`` the values go to stdout when ``verbose >= 1``; ``learn()`` then sets up
        the model's usual logger.
    :return: The model
    """
    if gradient_steps < 0:
        raise ValueError(f"gradient_steps must be >= 0, got {gradient_steps}")
    buffer = model.replay_buffer
    if buffer is None or buffer.size() == 0:
        raise ValueError("pretrain needs transitions in model.replay_buffer: call add_demonstrations(model, paths) first")
    if not hasattr(model, "_logger"):
        # Not set_logger(): that marks the logger as the user's, and learn() would then skip tensorboard_log
        outputs: list[KVWriter] = [HumanOutputFormat(sys.stdout)] if model.verbose >= 1 else []
        model._logger = Logger(folder=None, output_formats=outputs)
    batch_size = model.batch_size if batch_size is None else batch_size
    done = 0
    while done < gradient_steps:
        chunk = gradient_steps - done if log_interval <= 0 else min(log_interval, gradient_steps - done)
        model.train(gradient_steps=chunk, batch_size=batch_size)
        done += chunk
        model.logger.record("pretrain/gradient_steps", done)
        model.logger.dump(step=model.num_timesteps)
    model.policy.set_training_mode(False)
    return model
