"""Every genuine SACAE model loads under the allow-list with identical predictions; buffers round-trip without pickle."""

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.utils import LinearSchedule

from sb3_sacae import SACAE
from sb3_sacae.buffers import FrameStackReplayBuffer
from tests.conftest import TEST_DEVICE, TinyPixelEnv, tiny_model

OPTIONS = {
    "defaults": {},
    "autoencoder_off": dict(decoder_update_interval=0),
    "fixed_ent_coef": dict(ent_coef=0.1),
    "linear_schedule": dict(learning_rate=LinearSchedule(1e-3, 1e-4, 0.5)),
    "action_noise": dict(action_noise=NormalActionNoise(np.zeros(2), 0.1 * np.ones(2))),
    "n_steps": dict(n_steps=3),
    "sde": dict(use_sde=True),
    "policy_kwargs": dict(
        policy_kwargs=dict(
            features_dim=8,
            n_filters=4,
            net_arch=dict(pi=[8], qf=[16]),
            activation_fn=th.nn.ELU,
            optimizer_class=th.optim.AdamW,
        )
    ),
    "frame_stack_buffer": dict(replay_buffer_class=FrameStackReplayBuffer),
}


@pytest.mark.parametrize("option", list(OPTIONS))
def test_genuine_model_loads_safely_with_identical_predictions(option, tmp_path):
    env = TinyPixelEnv()
    model = tiny_model(env, **OPTIONS[option])
    model.learn(24)
    model.save(tmp_path / "model")
    loaded = SACAE.load(tmp_path / "model.zip", env=TinyPixelEnv(), device=TEST_DEVICE)
    observations = np.stack([env.reset(seed=seed)[0] for seed in range(5)])
    np.testing.assert_array_equal(
        model.predict(observations, deterministic=True)[0], loaded.predict(observations, deterministic=True)[0]
    )
    for name, tensor in model.policy.state_dict().items():
        assert th.equal(tensor, loaded.policy.state_dict()[name]), name

    model.save_replay_buffer(tmp_path / "buffer")
    loaded.load_replay_buffer(tmp_path / "buffer.npz")
    assert type(loaded.replay_buffer) is type(model.replay_buffer)
    for name, value in vars(model.replay_buffer).items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, getattr(loaded.replay_buffer, name), err_msg=name)
    np.random.seed(0)
    expected = model.replay_buffer.sample(8)
    np.random.seed(0)
    for got, want in zip(loaded.replay_buffer.sample(8), expected, strict=True):
        if want is not None:
            assert th.equal(got, want)


def test_saved_schedules_are_picklable_by_reference():
    # SB3 2.9 wraps learning rates in FloatSchedule / ConstantSchedule classes: no closures in saved state
    model = tiny_model(learning_rate=LinearSchedule(1e-3, 1e-4, 0.5))
    for schedule in (model.lr_schedule, tiny_model().lr_schedule):
        assert b"cloudpickle" not in __import__("cloudpickle").dumps(schedule)


def test_trust_remote_code_loads_the_same_model(tmp_path):
    model = tiny_model()
    model.save(tmp_path / "model.zip")
    safe, trusted = SACAE.load(tmp_path / "model.zip"), SACAE.load(tmp_path / "model.zip", trust_remote_code=True)
    for name, tensor in safe.policy.state_dict().items():
        assert th.equal(tensor, trusted.policy.state_dict()[name])
    assert repr(safe.observation_space) == repr(trusted.observation_space)
