"""
Deferred finite checks (sb3_sacae.accel.sync_free): chosen on CUDA with fused optimizers. Selected here on the CPU as
on CUDA, they give the immediate checks' update exactly, read nothing on the host during the update, and still keep
every parameter finite, naming the first failed check.
"""

import numpy as np
import pytest
import torch as th

import sb3_sacae.accel.reconstruction
import sb3_sacae.accel.sync_free
from sb3_sacae import SACAE, guards
from sb3_sacae.accel.sync_free import deferred_checks_apply, set_fused, skips_on_flag, step_unless
from tests.conftest import TINY_POLICY, tiny_model


def _adam(fused: bool | None) -> th.optim.Adam:
    return th.optim.Adam([th.nn.Parameter(th.ones(3))], lr=0.1, fused=fused)


@pytest.fixture
def cpu_as_cuda(monkeypatch):
    """The CPU selected for deferred checks, as CUDA is (with it, the temperature's optimizer is fused too)."""
    monkeypatch.setattr(sb3_sacae.accel.sync_free, "_DEFERRED_DEVICES", ("cpu", "cuda"))


def immediate(model: SACAE, monkeypatch) -> SACAE:
    """``model`` with its update's checks read as they are made, whatever its device selects."""
    monkeypatch.setattr(model, "_train_record", lambda: guards.TrainRecord(model.num_timesteps, fast=model.fast_kernels))
    return model


def test_deferred_on_cuda_with_fused_optimizers_only():
    assert deferred_checks_apply("cuda", [_adam(True), None, _adam(True)])
    assert deferred_checks_apply(th.device("cuda:1"), [_adam(True)])
    assert not deferred_checks_apply("cpu", [_adam(True)])
    assert not deferred_checks_apply("cuda", [_adam(True), _adam(None)])
    assert not deferred_checks_apply("cuda", [th.optim.SGD([th.nn.Parameter(th.ones(1))], lr=0.1)])

    class OwnAdam(th.optim.Adam):  # a subclass's step may not read the flag
        pass

    assert not deferred_checks_apply("cuda", [OwnAdam([th.nn.Parameter(th.ones(1))], fused=True)])


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


def test_set_fused_moves_the_step_counts_where_each_implementation_reads_them():
    optimizer = _adam(None)
    optimizer.param_groups[0]["params"][0].grad = th.ones(3)
    optimizer.step()
    set_fused(optimizer, True)
    assert skips_on_flag(optimizer)
    step_unless(optimizer, th.tensor(False))
    set_fused(optimizer, None)
    optimizer.step()
    (state,) = optimizer.state.values()
    assert state["step"].item() == 3 and state["step"].dtype == th.float32


def test_the_temperature_optimizer_is_fused_where_the_checks_are_deferred(cpu_as_cuda, monkeypatch, tmp_path):
    # on the CPU, whatever SACAE_TEST_DEVICE says: the selection is what is tested
    assert skips_on_flag(tiny_model(device="cpu").ent_coef_optimizer)
    plain = tiny_model(device="cpu", policy_kwargs=dict(**TINY_POLICY, optimizer_kwargs={}))
    assert not skips_on_flag(plain.ent_coef_optimizer) and not plain._train_record().deferred
    # files follow the machine that loads them: fused where the checks are deferred there, torch's default elsewhere
    model = tiny_model(device="cpu")
    model.learn(20)
    model.save(tmp_path / "deferred.zip")
    monkeypatch.undo()
    loaded = SACAE.load(tmp_path / "deferred.zip", device="cpu")
    assert not skips_on_flag(loaded.ent_coef_optimizer) and not loaded._train_record().deferred
    loaded.save(tmp_path / "plain.zip")
    monkeypatch.setattr(sb3_sacae.accel.sync_free, "_DEFERRED_DEVICES", ("cpu", "cuda"))
    again = SACAE.load(tmp_path / "plain.zip", env=model.get_env(), device="cpu")
    assert skips_on_flag(again.ent_coef_optimizer) and again._train_record().deferred
    again.learn(10, reset_num_timesteps=False)


def _logged(model) -> dict[str, float]:
    return {key: value for key, value in model.logger.name_to_value.items() if key.startswith("train/")}


@pytest.mark.parametrize("kwargs", [{}, {"reuse_critic_features": True}, {"decoder_update_interval": 0}])
def test_deferred_checks_give_the_same_update(cpu_as_cuda, monkeypatch, kwargs):
    # each built (which seeds torch's generator) just before it learns
    deferred = tiny_model(**kwargs).learn(40)
    reference = immediate(tiny_model(**kwargs), monkeypatch).learn(40)
    assert deferred._train_record().deferred and not reference._train_record().deferred
    for a, b in zip(deferred.policy.state_dict().values(), reference.policy.state_dict().values(), strict=True):
        assert th.equal(a, b)
    assert th.equal(deferred.log_ent_coef, reference.log_ent_coef)
    assert _logged(deferred) == _logged(reference) and "train/critic_loss" in _logged(deferred)


def test_deferred_update_reads_nothing_on_the_host(cpu_as_cuda, monkeypatch):
    # the CPU's sliced reconstruction loss reads its output gradient on the host; CUDA takes the plain loss
    monkeypatch.setattr(sb3_sacae.accel.reconstruction, "sliced_loss_applies", lambda device: False)
    model = tiny_model()
    model.learn(32)
    record = model._train_record()
    monkeypatch.setattr(model, "_train_record", lambda: record)
    monkeypatch.setattr(record, "close", lambda: {})

    def refuse(*args):
        raise AssertionError("a host read inside the deferred update")

    for read in ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__"):
        monkeypatch.setattr(th.Tensor, read, refuse)
    model.train(3, 8)
    monkeypatch.undo()
    assert set(record.close()) >= {"critic_loss", "actor_loss", "ae_loss", "ent_coef"}


def test_a_non_finite_loss_is_named_and_no_parameter_moves_on_it(cpu_as_cuda):
    model = tiny_model()
    model.learn(32)
    q_heads = [p.detach().clone() for p in model._q_params]
    steps = [state["step"].clone() for state in model.critic.optimizer.state.values()]
    model.replay_buffer.rewards[:] = np.nan  # as if corrupted after collection
    with pytest.raises(FloatingPointError, match=r"critic loss is nan at gradient step \d+ .*skipped"):
        model.train(2, 8)
    # the critic's steps were skipped (the encoder's and the actor's, on finite losses, were not): nothing became
    # non-finite
    assert all(th.equal(old, new) for old, new in zip(q_heads, model._q_params, strict=True))
    assert all(th.equal(old, state["step"]) for old, state in zip(steps, model.critic.optimizer.state.values(), strict=True))
    assert all(th.isfinite(p).all() for p in model.policy.parameters())
    assert th.isfinite(model.log_ent_coef).all()
