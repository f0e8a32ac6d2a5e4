"""``compile_networks`` of ``benchmarks/throughput.py`` (its ``--versus-compile`` model) compiles a model's networks in
place: each compiled pass computes what the eager one does, forward and backward, over repeated calls (on CUDA with
``mode="reduce-overhead"``: recorded as CUDA graphs, then replayed, none skipped), the update runs on them, and the
state dict keeps its keys. On the suite's device (``SACAE_TEST_DEVICE``): on CUDA with the fast path, on the CPU with
torch.compile's default mode and the oneDNN Linear layers off (Inductor cannot lower their op)."""

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest
import torch as th
import torch._dynamo.utils
import torch._inductor.config

from tests.conftest import TEST_DEVICE

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import throughput  # noqa: E402

DEVICE = th.device(TEST_DEVICE)
MODE = "reduce-overhead" if DEVICE.type == "cuda" else "default"
TINY = argparse.Namespace(
    channels=6,
    image_size=40,
    action_dim=2,
    frame_stack=None,
    policy_kwargs=dict(features_dim=8, n_filters=8, net_arch=[16, 16], onednn_linear=False),
    transitions=32,
    seed=0,
    batch_size=8,
)


def tiny_model():
    return throughput.prepare(throughput.build_sacae(TINY, DEVICE, {}), TINY)


def compiled_methods(model) -> list:
    """The methods compile_networks replaces, as the model holds them."""
    policy = model.policy
    encoders = [policy.actor.features_extractor, policy.critic.features_extractor, policy.critic_target.features_extractor]
    return [
        policy.trunk.features,
        policy.critic_target.features_extractor.trunk.features,
        *(encoder.head.forward for encoder in encoders),
        policy.critic.q_at_actions,
        policy.critic_target.q_at_actions,
        policy.actor.action_log_prob_from_features,
        policy.decoder.reconstruct,
    ]


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
    torch._dynamo.utils.counters.clear()
    eager, compiled = tiny_model(), tiny_model()
    th.testing.assert_close(compiled.policy.state_dict(), eager.policy.state_dict())  # the same seed, the same weights
    keys = list(compiled.policy.state_dict())
    throughput.compile_networks(compiled, MODE)
    assert all(hasattr(method, "_torchdynamo_orig_callable") for method in compiled_methods(compiled))
    assert not any(hasattr(method, "_torchdynamo_orig_callable") for method in compiled_methods(eager))

    generator = th.Generator().manual_seed(0)
    observations = th.randint(0, 256, (TINY.batch_size, TINY.channels, 40, 40), dtype=th.uint8, generator=generator)
    actions = th.rand(TINY.batch_size, TINY.action_dim, generator=generator) * 2 - 1
    observations, actions = observations.to(DEVICE), actions.to(DEVICE)
    for _ in range(3):  # CUDA graph trees run a pass eagerly first, record it on a later call, then replay it
        if DEVICE.type == "cuda":
            th.compiler.cudagraph_mark_step_begin()
        expected, actual = every_pass(eager, observations, actions), every_pass(compiled, observations, actions)
        for model, values in ((eager, expected), (compiled, actual)):
            model.policy.zero_grad(set_to_none=True)
            sum(value.square().mean() for value in values.values()).backward()
        # the same math, up to the order of float32 sums in the fused kernels
        th.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)
        pairs = zip(eager.policy.named_parameters(), compiled.policy.parameters(), strict=True)
        for (name, eager_parameter), parameter in pairs:
            assert (eager_parameter.grad is None) == (parameter.grad is None), name
            if parameter.grad is not None:
                message = lambda text, name=name: f"{name}: {text}"  # noqa: E731
                th.testing.assert_close(parameter.grad, eager_parameter.grad, rtol=1e-4, atol=1e-6, msg=message)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0
    assert not torch._dynamo.utils.counters["inductor"]["cudagraph_skips"]  # none ran eagerly instead

    np.random.seed(1)  # the replay buffer samples with numpy's global generator
    compiled.train(gradient_steps=4, batch_size=TINY.batch_size)  # every kind of step: the actor every other one
    assert compiled._n_updates == 4 and list(compiled.policy.state_dict()) == keys
    assert all(th.isfinite(parameter).all() for parameter in compiled.policy.parameters())
