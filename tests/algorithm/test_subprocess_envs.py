"""SACAE on SB3's SubprocVecEnv: the envs' optional attributes (frame_stack, action_repeat) are asked for, never assumed
(a subprocess worker asked for an attribute its env lacks dies instead of raising)."""

from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import SubprocVecEnv

from sb3_sacae import FrameStackReplayBuffer
from sb3_sacae.envs import ActionRepeat, ChannelFrameStack
from tests.conftest import TinyPixelEnv, tiny_model


def subprocess_envs(make_env, n_envs: int = 2) -> SubprocVecEnv:
    # fork: the workers inherit the test's modules instead of importing them afresh
    return make_vec_env(make_env, n_envs=n_envs, vec_env_cls=SubprocVecEnv, vec_env_kwargs=dict(start_method="fork"))


def test_envs_without_the_optional_attributes_train():
    env = subprocess_envs(TinyPixelEnv)
    try:
        model = tiny_model(env)
        model.learn(24)
        assert type(model.replay_buffer).__name__ == "ReplayBuffer" and model.env_frames == model.num_timesteps == 24
    finally:
        env.close()


def test_frame_stack_and_action_repeat_are_read_from_the_workers():
    # 3 stacked frames of 1 channel (the tiny env's 3 equal channels: one frame of 1 channel, stacked)
    env = subprocess_envs(lambda: ChannelFrameStack(ActionRepeat(TinyPixelEnv(shape=(32, 32, 1), channel_last=True), 2), 3))
    try:
        model = tiny_model(env)
        assert isinstance(model.replay_buffer, FrameStackReplayBuffer) and model.replay_buffer.frame_stack == 3
        model.learn(24)
        assert model.env_frames == 2 * model.num_timesteps
    finally:
        env.close()
