"""fast_kernels=False: the whole update on plain torch layers and functions computes what the speed pieces compute."""

import copy

import numpy as np
import pytest
import torch as th

from sb3_sacae import SACAE
from sb3_sacae.accel import deconv, reconstruction
from sb3_sacae.accel.deconv import DeconvLayer
from sb3_sacae.accel.flat_order import FlatOrdered
from sb3_sacae.accel.onednn import OneDNNLinear
from tests.conftest import tiny_model


def _fast_and_plain(**settings) -> tuple[SACAE, SACAE]:
    """Two models with the same weights, optimizer moments and replay buffer: speed pieces on and off."""
    fast = tiny_model(**settings)
    fast.learn(32)
    plain = tiny_model(fast_kernels=False, **settings)
    # modules and optimizers, in (C, H, W) order in both; copies, as loading may keep the live moments it is given
    plain.set_parameters(copy.deepcopy(fast.get_parameters()))
    plain.replay_buffer, plain._n_updates = fast.replay_buffer, fast._n_updates
    with th.no_grad():
        plain.log_ent_coef.copy_(fast.log_ent_coef)
    plain.set_logger(fast.logger)
    return fast, plain


def _refuse_speed_pieces(monkeypatch) -> None:
    fail = lambda *args, **kwargs: pytest.fail("a speed piece ran with fast_kernels=False")  # noqa: E731
    monkeypatch.setattr(reconstruction, "sliced_reconstruction_loss", fail)
    monkeypatch.setattr(deconv._TransposedConvFunction, "apply", fail)
    monkeypatch.setattr(OneDNNLinear, "forward", fail)
    monkeypatch.setattr(th, "_foreach_norm", fail)


def test_plain_models_hold_no_speed_piece():
    policy = tiny_model(fast_kernels=False).policy
    assert not any(isinstance(module, (OneDNNLinear, DeconvLayer)) for module in policy.modules())
    assert all(module.flat_order is None for module in policy.modules() if isinstance(module, FlatOrdered))
    assert policy.trunk.memory_format == th.contiguous_format
    assert any(isinstance(module, th.nn.ConvTranspose2d) for module in policy.decoder.modules())


@pytest.mark.parametrize("settings", [{}, {"reuse_critic_features": True}], ids=["paper", "reuse_critic_features"])
def test_the_update_with_every_speed_piece_off_matches_the_fast_one(monkeypatch, settings):
    fast, plain = _fast_and_plain(**settings)
    results = {}
    for name, model in (("fast", fast), ("plain", plain)):
        if name == "plain":
            _refuse_speed_pieces(monkeypatch)
        np.random.seed(5)
        th.manual_seed(5)
        model.train(1, 8)  # an even step: critic, actor and alpha, targets and autoencoder all update
        results[name] = dict(model.logger.name_to_value)
    monkeypatch.undo()
    for key in ("train/critic_loss", "train/actor_loss", "train/ae_loss", "train/ent_coef_loss"):
        np.testing.assert_allclose(results["plain"][key], results["fast"][key], rtol=1e-4, err_msg=key)
    # the same parameters, up to float32 rounding of a different summation order (far below one Adam step of 1e-3)
    for (name, ours), theirs in zip(fast.policy.state_dict().items(), plain.policy.state_dict().values(), strict=True):
        th.testing.assert_close(ours, theirs, rtol=0, atol=1e-5, msg=name)
    th.testing.assert_close(fast.log_ent_coef, plain.log_ent_coef, rtol=0, atol=1e-7)
