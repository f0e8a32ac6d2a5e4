"""gSDE (``use_sde=True``) as in SB3's SAC: the actor's exploration options reach it, its log_std trains with the
actor, and the options survive save / load."""

import pytest
import torch as th
from stable_baselines3.common.distributions import StateDependentNoiseDistribution
from torch import nn

from sb3_sacae import SACAE
from tests.conftest import TINY_POLICY, tiny_model


def test_gsde_trains_its_log_std_with_the_actor():
    model = tiny_model(use_sde=True, sde_sample_freq=4, learning_starts=8)
    actor = model.actor
    assert isinstance(actor.action_dist, StateDependentNoiseDistribution)
    assert any(p is actor.log_std for group in actor.optimizer.param_groups for p in group["params"])
    before = actor.log_std.detach().clone()
    model.learn(24)
    assert not th.equal(before, actor.log_std.detach())
    assert th.isfinite(actor.log_std).all()


@pytest.mark.parametrize("options", [dict(), dict(use_expln=True, clip_mean=0.0, full_std=False)])
def test_gsde_options_reach_the_actor_and_survive_save_and_load(tmp_path, options):
    model = tiny_model(use_sde=True, policy_kwargs={**TINY_POLICY, **options})
    expected = {"use_expln": False, "clip_mean": 2.0, "full_std": True, **options}
    for actor in (model.actor, SACAE.load(_saved(model, tmp_path)).actor):
        assert {name: getattr(actor, name) for name in expected} == expected
        assert actor.action_dist.use_expln == expected["use_expln"]
        assert actor.action_dist.full_std == expected["full_std"]
        # clip_mean > 0 wraps the mean in a Hardtanh, as in SB3
        assert isinstance(actor.mu, nn.Sequential) == (expected["clip_mean"] > 0)
        # full_std=False: one log std per feature, shared by the actions
        assert actor.log_std.shape == (TINY_POLICY["net_arch"][-1], 2 if expected["full_std"] else 1)


def _saved(model: SACAE, tmp_path) -> str:
    path = str(tmp_path / "gsde")
    model.save(path)
    return path
