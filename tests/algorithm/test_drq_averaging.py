"""DrQ's averaging over shifted copies: the critic's target over K copies of the next observations (target_shifts),
its loss over M copies of the observations (critic_shifts)."""

import io

import numpy as np
import pytest
import torch as th
import torch.nn.functional as F

from sb3_sacae import SACAE
from sb3_sacae.torch_layers import random_shift
from tests.algorithm.test_multi_input_policy import TINY_MULTI, TinyDictEnv
from tests.algorithm.test_reference_update import assert_same_parameters, copies, reference_after_critic, same_seed_step
from tests.conftest import TEST_DEVICE, TINY, TinyPixelEnv, tiny_model
from tests.discrete.test_discrete_losses import DiscreteTinyPixelEnv

PAD = 2
DRQ = dict(random_shift=PAD, critic_shifts=2, target_shifts=3)


def _drq_update(model: SACAE) -> None:
    """
    DrQ's update with SAC-AE's autoencoder, written out plainly: every copy's target and loss computed on its own
    through the SB3 modules' forward passes, then averaged. The random draws come in the order ``train()`` makes them
    (the observations' offsets, the next observations' offsets, the next actions), so the two must agree exactly.
    """
    m, k = model.critic_shifts, model.target_shifts
    data = model.replay_buffer.sample(8)
    model.policy.set_training_mode(True)
    alpha = model.log_ent_coef.detach().exp()
    obs_copies = random_shift(data.observations.repeat(m, 1, 1, 1), PAD).split(8)
    next_copies = random_shift(data.next_observations.repeat(k, 1, 1, 1), PAD)
    with th.no_grad():
        next_actions, next_log_prob = model.actor.action_log_prob(next_copies)
        target_v = th.cat(model.critic_target(next_copies, next_actions), 1).min(1, keepdim=True).values
        soft_v = (target_v - alpha * next_log_prob.reshape(-1, 1)).split(8)
        targets = [data.rewards + (1 - data.dones) * model.gamma * value for value in soft_v]
        target_q = sum(targets[1:], targets[0]) / k
    copy_losses = []
    for obs in obs_copies:
        q1, q2 = model.critic(obs, data.actions)
        copy_losses.append(F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q))
    critic_loss = sum(copy_losses[1:], copy_losses[0]) / m
    model.critic.optimizer.zero_grad()
    critic_loss.backward()
    model.critic.optimizer.step()
    # the actor and the decoder read the first copy
    reference_after_critic(model, obs_copies[0], alpha)


@pytest.mark.parametrize("fast_kernels", [True, False], ids=["fast kernels", "plain torch"])
def test_train_step_equals_the_drq_update_written_out(fast_kernels):
    copy = copies(10, fast_kernels=fast_kernels, **DRQ)  # a step where the actor, the targets and the decoder update
    ours, reference = copy(), copy()
    assert (ours.critic_shifts, ours.target_shifts) == (2, 3)
    same_seed_step(ours)
    same_seed_step(reference, _drq_update)
    assert_same_parameters(ours, reference)


def test_the_target_is_the_mean_over_the_next_observation_copies():
    """Discrete actions: the soft value is an exact expectation, so each copy's value is deterministic."""
    model = tiny_model(DiscreteTinyPixelEnv(), random_shift=PAD, target_shifts=3)
    model.learn(24)
    np.random.seed(0)
    th.manual_seed(0)
    batch = model._sample(8)
    ent_coef = model.log_ent_coef.detach().exp()
    with th.no_grad():
        averaged = model._next_soft_value(batch, ent_coef)
        model.target_shifts = 1
        each = [model._next_soft_value(batch._replace(next_pixels=copy), ent_coef) for copy in batch.next_pixels.split(8)]
    assert averaged.shape == (8, 1)
    th.testing.assert_close(averaged, th.stack(each).mean(0), rtol=0, atol=1e-6)
    assert not all(th.equal(each[0], other) for other in each[1:]), "the copies should be shifted differently"


def test_the_copies_are_independent_shifts_of_the_sampled_batch():
    model = tiny_model(**DRQ)
    model.learn(24)
    np.random.seed(3)
    data = model.replay_buffer.sample(8)
    np.random.seed(3)
    batch = model._sample(8)
    assert batch.size == 8 and len(batch.observations) == 8 and len(batch.actions) == 8
    assert batch.pixels.shape[0] == 16 and batch.next_pixels.shape[0] == 24
    pixel_copies = (batch.pixels * 255).round().to(th.uint8).split(8)
    assert th.equal(pixel_copies[0], batch.observations), "the reconstruction target is the first copy"
    padded = F.pad(data.observations.float(), (PAD,) * 4, mode="replicate")
    for copy in pixel_copies:
        for image, shifted in zip(padded, copy, strict=True):
            crops = [image[:, y : y + 32, x : x + 32] for y in range(2 * PAD + 1) for x in range(2 * PAD + 1)]
            assert any(th.equal(crop.to(th.uint8), shifted) for crop in crops)
    assert not th.equal(pixel_copies[0], pixel_copies[1])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(reuse_critic_features=True),
        dict(bf16_autocast=True),
        dict(decoder_update_interval=0),
    ],
    ids=["reuse_critic_features", "bf16_autocast", "no decoder"],
)
def test_trains_with_the_other_update_options(kwargs):
    model = tiny_model(**DRQ, **kwargs)
    model.learn(40)
    assert model._n_updates == 24 and np.isfinite(model.logger.name_to_value["train/critic_loss"])


def test_trains_with_dict_observations_and_discrete_actions():
    settings = {**TINY, "policy_kwargs": TINY_MULTI, "seed": 0, "device": TEST_DEVICE, **DRQ}
    dict_model = SACAE("MultiInputPolicy", TinyDictEnv(), **settings)
    dict_model.learn(40)
    discrete = tiny_model(DiscreteTinyPixelEnv(), **DRQ)
    discrete.learn(40)
    assert dict_model._n_updates == discrete._n_updates == 24


def test_the_shared_forward_holds_one_copy():
    """The actor and the decoder read one copy of the batch, from both of the critic stage's paths."""
    for reuse in (False, True):
        model = tiny_model(**DRQ, reuse_critic_features=reuse)
        model.learn(24)
        ent_coef = model.log_ent_coef.detach().exp()
        shared = model._update_critic(model._sample(8), ent_coef, True, True, model._train_record())
        assert shared.latent.shape == (8, TINY["policy_kwargs"]["features_dim"])
        assert len(shared.trunk_features) == 8


def test_saved_and_loaded_with_the_model():
    model = tiny_model(**DRQ)
    saved = io.BytesIO()
    model.save(saved)
    saved.seek(0)
    loaded = SACAE.load(saved, env=TinyPixelEnv(), device=TEST_DEVICE)
    assert (loaded.critic_shifts, loaded.target_shifts) == (2, 3)


def test_one_copy_by_default():
    model = tiny_model()
    assert model.critic_shifts == model.target_shifts == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(critic_shifts=2), "random_shift=0 shifts nothing: pass random_shift=4"),
        (dict(target_shifts=2), "random_shift=0 shifts nothing: pass random_shift=4"),
        (dict(random_shift=4, critic_shifts=0), "critic_shifts is DrQ's M, a number of shifted copies >= 1"),
        (dict(random_shift=4, target_shifts=1.5), "target_shifts is DrQ's K, a number of shifted copies >= 1"),
        (dict(random_shift=4, target_shifts=True), "target_shifts is DrQ's K"),
    ],
)
def test_bad_numbers_of_copies_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(**kwargs)
