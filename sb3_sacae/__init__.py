"""sb3-sacae: SAC-AE (Yarats et al. 2019) as a Stable-Baselines3 algorithm."""

from pathlib import Path

from sb3_sacae import envs  # registers the pixel environment ids with Gymnasium
from sb3_sacae.buffers import FrameStackReplayBuffer
from sb3_sacae.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, SACAEPolicy
from sb3_sacae.sacae import SACAE

__version__ = (Path(__file__).parent / "version.txt").read_text(encoding="utf-8").strip()

__all__ = [
    "SACAE",
    "CnnPolicy",
    "FrameStackReplayBuffer",
    "MlpPolicy",
    "MultiInputPolicy",
    "SACAEPolicy",
    "__version__",
    "envs",
]
