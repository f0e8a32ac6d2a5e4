"""Pretraining on demonstrations: ordinary gradient steps before any interaction, then learn() carries on."""

import numpy as np
import pytest
import torch as th

from sb3_sacae.demonstrations import add_demonstrations, pretrain, record_demonstrations
from tests.conftest import TinyPixelEnv, tiny_model


@pytest.fixture
def prefilled():
    model = tiny_model(learning_starts=0)
    add_demonstrations(model, record_demonstrations(TinyPixelEnv(), None, 2, seed=0))
    return model


def parameters(module: th.nn.Module) -> list[th.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def moved(before: list[th.Tensor], module: th.nn.Module) -> bool:
    return any(not th.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


def test_pretrain_moves_every_part_and_counts_updates(prefilled):
    model = prefilled
    assert not hasattr(model, "_logger")  # never learned: pretrain sets up a logger itself
    parts = {
        "encoder": model.policy.encoder,
        "critic": model.critic,
        "critic_target": model.critic_target,
        "actor": model.actor,
        "decoder": model.policy.decoder,
    }
    before = {name: parameters(module) for name, module in parts.items()}
    pretrain(model, gradient_steps=4)
    assert model._n_updates == 4
    assert model.num_timesteps == 0
    for name, module in parts.items():
        assert moved(before[name], module), f"{name} did not move"
    assert not model.policy.training  # back in evaluation mode for predict()


def test_learn_continues_after_pretraining(prefilled):
    model = prefilled
    pretrain(model, gradient_steps=3, log_interval=2)
    model.learn(10)
    # learning_starts=0: one gradient step per environment step from the first one on
    assert (model.num_timesteps, model._n_updates) == (10, 13)
    assert model.replay_buffer.pos == 40 + 10
    assert not model._custom_logger  # learn() set up the model's own logger (tensorboard_log, verbose)


def test_pretrain_uses_the_given_batch_size(prefilled):
    sizes = []
    sample = prefilled.replay_buffer.sample
    prefilled.replay_buffer.sample = lambda batch_size, env=None: sizes.append(batch_size) or sample(batch_size, env)
    pretrain(prefilled, gradient_steps=2, batch_size=5)
    pretrain(prefilled, gradient_steps=1)
    assert sizes == [5, 5, prefilled.batch_size]


def test_pretrain_prints_when_verbose(capsys):
    model = tiny_model(verbose=1)
    add_demonstrations(model, record_demonstrations(TinyPixelEnv(), None, 1, seed=0))
    pretrain(model, gradient_steps=2)
    out = capsys.readouterr().out
    assert "pretrain/" in out and "gradient_steps" in out and "critic_loss" in out


def test_pretrain_without_transitions_says_what_to_do():
    with pytest.raises(ValueError, match="add_demonstrations"):
        pretrain(tiny_model(), gradient_steps=1)


def test_zero_steps_change_nothing(prefilled):
    before = parameters(prefilled.policy)
    pretrain(prefilled, gradient_steps=0)
    assert prefilled._n_updates == 0 and not moved(before, prefilled.policy)
    np.testing.assert_equal(prefilled.num_timesteps, 0)
