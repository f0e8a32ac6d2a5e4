"""The same seed gives the same run on CPU."""

import torch as th

from tests.conftest import tiny_model


def _trained(seed: int):
    # SB3 seeds the global generators when the model is built: build and train one model at a time
    model = tiny_model(seed=seed)
    model.learn(40)
    return model


def test_same_seed_gives_identical_parameters():
    first, second = _trained(3), _trained(3)
    for a, b in zip(first.policy.state_dict().values(), second.policy.state_dict().values(), strict=True):
        assert th.equal(a, b)


def test_different_seeds_give_different_parameters():
    first, second = tiny_model(seed=3), tiny_model(seed=4)
    assert any(not th.equal(a, b) for a, b in zip(first.policy.parameters(), second.policy.parameters(), strict=True))
