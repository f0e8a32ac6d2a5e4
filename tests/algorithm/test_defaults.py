"""The constructor defaults are the paper's training-script values, and the YAML repeats them."""

import ast
import inspect
from pathlib import Path

import pytest
import torch as th
import yaml

from sb3_sacae import SACAE
from tests.conftest import TEST_DEVICE, TinyPixelEnv

# SAC-AE training script -> SB3-style names
PAPER = {
    "learning_rate": 1e-3,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "batch_size": 128,
    "tau": 0.01,
    "gamma": 0.99,
    "ent_coef": "auto_0.1",
    "encoder_tau": 0.05,
    "target_update_interval": 2,
    "actor_update_interval": 2,
    "decoder_update_interval": 1,
    "encoder_lr": 1e-3,
    "decoder_lr": 1e-3,
    "decoder_latent_lambda": 1e-6,
    "decoder_weight_lambda": 1e-7,
    "ent_coef_lr": 1e-4,
    "ent_coef_betas": (0.5, 0.999),
}
PAPER_POLICY = {"features_dim": 50, "n_filters": 32, "n_conv_layers": 4, "net_arch": [1024, 1024]}
YAML_FILE = Path(__file__).resolve().parents[2] / "hyperparams" / "sacae.yml"


def _policy_kwargs(value) -> dict:
    """rl_zoo3 writes policy_kwargs as a "dict(...)" string: read its literal keywords without eval."""
    if isinstance(value, dict):
        return value
    call = ast.parse(value, mode="eval").body
    return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}


@pytest.mark.parametrize("name, value", PAPER.items())
def test_constructor_default_is_the_paper_value(name, value):
    assert inspect.signature(SACAE.__init__).parameters[name].default == value


def test_policy_defaults_are_the_paper_networks():
    model = SACAE("CnnPolicy", TinyPixelEnv((9, 84, 84)), buffer_size=10, device=TEST_DEVICE)
    policy = model.policy
    assert policy.features_dim == 50 and policy.n_filters == 32 and policy.n_conv_layers == 4
    assert policy.actor_arch == [1024, 1024] and policy.critic_arch == [1024, 1024]
    assert model.log_ent_coef.exp().item() == pytest.approx(0.1)
    assert model.target_entropy == -2.0  # -|A|


def test_yaml_default_entry_repeats_the_constructor_defaults():
    default = yaml.safe_load(YAML_FILE.read_text())["default"]
    assert set(PAPER) <= default.keys(), set(PAPER) - default.keys()
    for name, expected in PAPER.items():
        value = default[name]
        assert (tuple(value) if isinstance(expected, tuple) else value) == expected, name
    assert _policy_kwargs(default["policy_kwargs"]) == PAPER_POLICY


def test_paper_actor_log_std_range():
    model = SACAE("CnnPolicy", TinyPixelEnv(), buffer_size=10, device=TEST_DEVICE, policy_kwargs=dict(net_arch=[8]))
    with th.no_grad():
        model.actor.log_std.bias.fill_(1e6)
        _, high, _ = model.actor.get_action_dist_params(th.zeros(1, 3, 32, 32, device=model.device))
        model.actor.log_std.bias.fill_(-1e6)
        _, low, _ = model.actor.get_action_dist_params(th.zeros(1, 3, 32, 32, device=model.device))
    assert th.allclose(high.cpu(), th.tensor(2.0)) and th.allclose(low.cpu(), th.tensor(-10.0))
    with th.no_grad():
        model.actor.log_std.bias.fill_(0.0)
        model.actor.log_std.weight.fill_(0.0)
        _, middle, _ = model.actor.get_action_dist_params(th.zeros(1, 3, 32, 32, device=model.device))
    assert th.allclose(middle.cpu(), th.tensor(-4.0))  # tanh(0) = 0 maps to the middle of [-10, 2], not a clamp
