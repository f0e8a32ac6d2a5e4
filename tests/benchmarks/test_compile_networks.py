"""``compile_networks`` of ``benchmarks/throughput.py`` (its ``--versus-compile`` model) compiles a model's networks in
place: each compiled pass computes what the eager one does, forward and backward, the update runs on them, and the
state dict keeps its keys. On the suite's device (``SACAE_TEST_DEVICE``): on CUDA with CUDA graphs
(``mode="reduce-overhead"``) and the fast path, on the CPU with torch.compile's default mode and plain layers."""

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest
import torch as th
import torch._inductor.config

from tests.conftest import TEST_DEVICE

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import throughput  # noqa: E402

DEVICE = th.device(TEST_DEVICE)
# torch.compile cannot trace the oneDNN Linear of the CPU's fast path
MODE, SACAE_KWARGS = ("reduce-overhead", {}) if DEVICE.type == "cuda" else ("default", {"fast_kernels": False})

TINY = argparse.Namespace(
    channels=6,
    image_size=40,
    action_dim=2,
    frame_stack=None,
    policy_kwargs=dict(features_dim=8, n_filters=8, net_arch=[16, 16]),
    transitions=32,
    seed=0,
    batch_size=8,
)


def tiny_model():
    return throughput.prepare(throughput.build_sacae(TINY, DEVICE, SACAE_KWARGS), TINY)


def every_pass(model, observations: th.Tensor, actions: th.Tensor) -> dict[str, th.Tensor]:
    """The outputs of every method compile_networks compiles, on one batch."""
    policy = model.policy
    th.manual_seed(2)  # the actor samples its actions
    pixels = policy.trunk.preprocess(observations)
    features = policy.trunk.features(pixels)
    latent = policy.critic.features_extractor.latent(features)
    target_encoder = policy.critic_target.features_extractor
    target_latent = target_encoder.latent(target_encoder.trunk.features(pixels))
    sampled, log_prob = policy.actor.action_log_prob_from_features(policy.actor.features_extractor.latent(features))
    return {
        "q": policy.critic.q_at_actions(latent, actions),
        "target q": policy.critic_target.q_at_actions(target_latent, actions),
        "sampled actions": sampled,
        "log_prob": log_prob,
        "reconstruction": policy.decoder.reconstruct(latent),
    }


@pytest.mark.slow  # compiling takes most of a minute
def test_compiled_networks_compute_what_the_eager_ones_do_and_keep_their_state_dict(monkeypatch):
    # inductor draws its own random numbers unless told to call torch's: the actor's samples must be the same
    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)
    eager, compiled = tiny_model(), tiny_model()
    th.testing.assert_close(compiled.policy.state_dict(), eager.policy.state_dict())  # the same seed, the same weights
    keys = list(compiled.policy.state_dict())
    throughput.compile_networks(compiled, MODE)
    # compiled methods are instance attributes over the class's own
    assert "features" in vars(compiled.policy.trunk) and "features" not in vars(eager.policy.trunk)

    generator = th.Generator().manual_seed(0)
    observations = th.randint(0, 256, (TINY.batch_size, TINY.channels, 40, 40), dtype=th.uint8, generator=generator)
    actions = th.rand(TINY.batch_size, TINY.action_dim, generator=generator) * 2 - 1
    observations, actions = observations.to(DEVICE), actions.to(DEVICE)
    outputs = {name: every_pass(model, observations, actions) for name, model in (("eager", eager), ("compiled", compiled))}
    for model, values in ((eager, outputs["eager"]), (compiled, outputs["compiled"])):
        model.policy.zero_grad(set_to_none=True)
        sum(value.square().mean() for value in values.values()).backward()
    # the same math, up to the order of float32 sums in the fused kernels
    th.testing.assert_close(outputs["compiled"], outputs["eager"], rtol=1e-4, atol=1e-5)
    for (name, expected), actual in zip(eager.policy.named_parameters(), compiled.policy.parameters(), strict=True):
        assert (expected.grad is None) == (actual.grad is None), name
        if expected.grad is not None:
            th.testing.assert_close(actual.grad, expected.grad, rtol=1e-4, atol=1e-6, msg=lambda m, name=name: f"{name}: {m}")

    np.random.seed(1)  # the replay buffer samples with numpy's global generator
    compiled.train(gradient_steps=4, batch_size=TINY.batch_size)  # every kind of step: the actor every other one
    assert compiled._n_updates == 4 and list(compiled.policy.state_dict()) == keys
    assert all(th.isfinite(parameter).all() for parameter in compiled.policy.parameters())
