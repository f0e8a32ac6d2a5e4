"""
Deferred finite checks (sb3_sacae.accel.sync_free): chosen on CUDA with fused optimizers; forced here on any device,
they give the immediate checks' update exactly, read nothing on the host during the update, and still keep every
parameter finite, naming the first failed check.
"""

import numpy as np
import pytest
import torch as th

import sb3_sacae.accel.reconstruction
import sb3_sacae.sacae
from sb3_sacae.accel.sync_free import deferred_checks_apply, skips_on_flag, step_unless
from tests.conftest import tiny_model


def _adam(fused: bool | None) -> th.optim.Adam:
    return th.optim.Adam([th.nn.Parameter(th.ones(3))], lr=0.1, fused=fused)


@pytest.fixture
def checks(monkeypatch):
    """Force the update's checks deferred (``True``) or immediate (``False``) on any device."""

    def force(deferred: bool) -> None:
        monkeypatch.setattr(sb3_sacae.sacae, "deferred_checks_apply", lambda device, optimizers: deferred)

    return force


def test_deferred_on_cuda_with_fused_optimizers_only():
    assert deferred_checks_apply("cuda", [_adam(True), None, _adam(True)])
    assert deferred_checks_apply(th.device("cuda:1"), [_adam(True)])
    assert not deferred_checks_apply("cpu", [_adam(True)])
    assert not deferred_checks_apply("cuda", [_adam(True), _adam(None)])
    assert not deferred_checks_apply("cuda", [th.optim.SGD([th.nn.Parameter(th.ones(1))], lr=0.1)])


def test_a_set_flag_leaves_parameters_moments_and_step_count():
    optimizer, twin = _adam(True), _adam(True)
    for flag in (False, True, False):
        for opt in (optimizer, twin):
            opt.param_groups[0]["params"][0].grad = th.full((3,), 0.5)
        step_unless(optimizer, th.tensor(flag))
        if not flag:
            twin.step()  # the twin takes only the steps that were not skipped
    ours, theirs = optimizer.param_groups[0]["params"][0], twin.param_groups[0]["params"][0]
    assert th.equal(ours, theirs)
    for key in ("step", "exp_avg", "exp_avg_sq"):
        assert th.equal(optimizer.state[ours][key], twin.state[theirs][key])
    assert not hasattr(optimizer, "found_inf")  # set for one step only


def test_step_unless_refuses_an_optimizer_that_cannot_skip():
    assert skips_on_flag(_adam(True)) and not skips_on_flag(_adam(None))
    with pytest.raises(TypeError, match="fused Adam or AdamW"):
        step_unless(_adam(None), th.tensor(False))


def test_the_temperature_optimizer_is_fused_with_the_networks():
    assert skips_on_flag(tiny_model().ent_coef_optimizer)
    plain = tiny_model(policy_kwargs=dict(features_dim=8, n_filters=8, net_arch=[16, 16], optimizer_kwargs={}))
    assert not skips_on_flag(plain.ent_coef_optimizer)


def _logged(model) -> dict[str, float]:
    return {key: value for key, value in model.logger.name_to_value.items() if key.startswith("train/")}


@pytest.mark.parametrize("kwargs", [{}, {"reuse_critic_features": True}, {"decoder_update_interval": 0}])
def test_deferred_checks_give_the_same_update(checks, kwargs):
    runs = []
    for deferred in (False, True):
        checks(deferred)
        model = tiny_model(**kwargs)
        model.learn(40)
        runs.append((model, _logged(model)))
    (immediate, immediate_log), (deferred_model, deferred_log) = runs
    for a, b in zip(immediate.policy.state_dict().values(), deferred_model.policy.state_dict().values(), strict=True):
        assert th.equal(a, b)
    assert th.equal(immediate.log_ent_coef, deferred_model.log_ent_coef)
    assert immediate_log == deferred_log and "train/critic_loss" in deferred_log


def test_deferred_update_reads_nothing_on_the_host(checks, monkeypatch):
    checks(True)
    # the CPU's sliced reconstruction loss reads its output gradient on the host; CUDA takes the plain loss
    monkeypatch.setattr(sb3_sacae.accel.reconstruction, "sliced_loss_applies", lambda device: False)
    model = tiny_model()
    model.learn(32)

    def refuse(*args):
        raise AssertionError("a host read inside the deferred update")

    monkeypatch.setattr(th.Tensor, "item", refuse)
    monkeypatch.setattr(th.Tensor, "__bool__", refuse)
    monkeypatch.setattr(th.Tensor, "tolist", refuse)
    record = model._train_record()
    monkeypatch.setattr(model, "_train_record", lambda: record)
    monkeypatch.setattr(record, "close", lambda: {})
    model.train(3, 8)
    monkeypatch.undo()
    assert set(record.close()) >= {"critic_loss", "actor_loss", "ae_loss", "ent_coef"}
    assert th.distributions.Distribution._validate_args  # torch's checks are back on after the update


def test_a_non_finite_loss_is_named_and_no_parameter_moves_on_it(checks, model):
    checks(True)
    q_heads = [p.detach().clone() for p in model._q_params]
    steps = [state["step"].clone() for state in model.critic.optimizer.state.values()]
    model.replay_buffer.rewards[:] = np.nan  # as if corrupted after collection
    with pytest.raises(FloatingPointError, match=r"critic loss is nan at gradient step \d+ .*skipped"):
        model.train(2, 8)
    # the critic's steps were skipped (the encoder's and the actor's, on finite gradients, were not): nothing became
    # non-finite
    assert all(th.equal(old, new) for old, new in zip(q_heads, model._q_params, strict=True))
    assert all(th.equal(old, state["step"]) for old, state in zip(steps, model.critic.optimizer.state.values(), strict=True))
    assert all(th.isfinite(p).all() for p in model.policy.parameters())
    assert th.isfinite(model.log_ent_coef).all()
