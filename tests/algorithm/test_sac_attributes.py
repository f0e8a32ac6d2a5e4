"""SACAE runs SB3's own SAC.__init__: it has every attribute SB3's SAC sets, for Box and Discrete actions alike."""

import pytest
from stable_baselines3 import SAC

from sb3_sacae.discrete import AllowDiscreteActions
from sb3_sacae.sacae import SACAE
from tests.conftest import TEST_DEVICE, TINY, TinyPixelEnv, tiny_model
from tests.discrete.test_discrete_losses import DiscreteTinyPixelEnv


def test_sacae_has_every_attribute_sb3_sac_sets():
    # the attributes are the algorithm's, whatever the policy: a small state-vector SAC builds quickest
    sac = SAC("MlpPolicy", "Pendulum-v1", batch_size=8, buffer_size=200, learning_starts=16, seed=0, device=TEST_DEVICE)
    missing = set(vars(sac)) - set(vars(tiny_model()))
    assert not missing, f"SB3's SAC sets attributes that SACAE lacks: {sorted(missing)}"


def test_sac_init_runs_for_discrete_actions_through_the_mixin(monkeypatch):
    calls = []
    original = SAC.__init__
    monkeypatch.setattr(SAC, "__init__", lambda self, *args, **kwargs: calls.append(1) or original(self, *args, **kwargs))
    model = tiny_model(DiscreteTinyPixelEnv())
    assert calls == [1] and model.target_update_interval == TINY.get("target_update_interval", 2)


def test_the_mixin_sits_between_sac_and_its_parent():
    mro = SACAE.__mro__
    assert mro.index(SAC) < mro.index(AllowDiscreteActions) < mro.index(SAC.__mro__[1])


@pytest.mark.parametrize("env", [TinyPixelEnv(), DiscreteTinyPixelEnv()], ids=["Box", "Discrete"])
def test_sac_attributes_keep_their_sb3_meaning(env):
    model = tiny_model(env, ent_coef="auto_0.1")
    assert model.ent_coef == "auto_0.1" and model.log_ent_coef is not None and model.ent_coef_optimizer is not None
