"""NaN or infinite rewards, observations or losses stop training with an error naming the step and the quantity,
before any parameter becomes non-finite; a model with non-finite parameters is never saved (no asserts: -O too)."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch as th

import sb3_sacae.sacae
from sb3_sacae import guards
from tests.conftest import TinyPixelEnv, tiny_model


class _BadReward(gym.Wrapper):
    def __init__(self, env: gym.Env, at_step: int, value: float):
        super().__init__(env)
        self.at_step, self.value, self.steps = at_step, value, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        return obs, (self.value if self.steps == self.at_step else reward), terminated, truncated, info


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_reward_stops_training_naming_the_step(value):
    model = tiny_model(_BadReward(TinyPixelEnv(), at_step=25, value=value))
    with pytest.raises(FloatingPointError, match=r"non-finite reward .* agent step 25"):
        model.learn(40)
    assert model.replay_buffer.size() == 24  # the bad transition never reached the buffer
    assert all(th.isfinite(p).all() for p in model.policy.parameters())


def test_non_finite_loss_stops_before_parameters_change(model, monkeypatch):
    # the immediate checks (on CUDA the update defers them: tests/accel/test_sync_free.py)
    monkeypatch.setattr(sb3_sacae.sacae, "deferred_checks_apply", lambda device, optimizers: False)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.replay_buffer.rewards[:] = np.nan  # as if corrupted after collection
    with pytest.raises(FloatingPointError, match=r"critic loss is nan at gradient step"):
        model.train(1, 8)
    for old, new in zip(before, model.policy.parameters(), strict=True):
        assert th.equal(old, new)


@pytest.mark.parametrize("deferred", [False, True])
def test_non_finite_gradient_is_never_stepped(model, deferred):
    # immediate: refused before the step; deferred (sb3_sacae.accel.sync_free): the step is skipped, then refused
    before = [p.detach().clone() for p in model.actor.parameters()]
    model.actor.optimizer.zero_grad()
    model.actor.mu.weight.grad = th.full_like(model.actor.mu.weight, np.inf)
    record = guards.TrainRecord(model.num_timesteps, deferred=deferred)
    with pytest.raises(FloatingPointError, match="non-finite actor gradients at gradient step 7"):
        record.step({"actor": model.actor.optimizer}, gradient_step=7)
        record.close()
    assert all(th.equal(a, b) for a, b in zip(before, model.actor.parameters(), strict=True))


@pytest.mark.parametrize("deferred", [False, True])
def test_a_non_finite_loss_with_finite_gradients_is_never_stepped(deferred):
    # the loss guards the step after its backward even where its gradients are finite
    parameter = th.nn.Parameter(th.ones(3))
    optimizer = th.optim.Adam([parameter], lr=0.1, fused=True)
    record = guards.TrainRecord(agent_step=11, deferred=deferred)
    loss = parameter.sum() + np.inf
    with pytest.raises(FloatingPointError, match=r"the test loss is inf at gradient step 4 \(agent step 11\)"):
        record.loss("test_loss", "test loss", loss, gradient_step=4)
        loss.backward()
        record.step({"test": optimizer}, gradient_step=4, losses=[loss])
        record.close()
    assert th.equal(parameter, th.ones(3))


def test_model_with_non_finite_parameters_is_never_saved(model, tmp_path):
    with th.no_grad():
        model.critic.q_networks[0][0].weight[0, 0] = np.nan
    with pytest.raises(FloatingPointError, match="not finite"):
        model.save(tmp_path / "broken.zip")
    assert not (tmp_path / "broken.zip").exists()


def test_checks_hold_under_python_optimize():
    code = (
        "import numpy as np, pytest\n"
        "from tests.conftest import tiny_model\n"
        "m = tiny_model(); m.learn(20); m.replay_buffer.rewards[:] = np.nan\n"
        "with pytest.raises(FloatingPointError): m.train(1, 8)\n"
        "print('refused')\n"
    )
    result = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refused" in result.stdout
