"""A bundle's RNG states are all checked before any is applied: a malformed one is a CorruptFileError, and the
process's generators are left as they were."""

import json
import random

import pytest
import torch as th

from sb3_sacae import SACAE
from sb3_sacae.checkpoints import resume_from_bundle, save_bundle
from sb3_sacae.io import CorruptFileError
from tests.conftest import TEST_DEVICE, TinyPixelEnv, tiny_model


@pytest.fixture(scope="module")
def genuine_state(tmp_path_factory):
    model = tiny_model()
    model.learn(20)
    bundle = save_bundle(model, tmp_path_factory.mktemp("bundles") / "checkpoint_20_steps")
    return bundle, json.loads((bundle / "state.json").read_text())


def _edited(genuine_state, edit) -> object:
    bundle, state = genuine_state
    state = json.loads(json.dumps(state))
    edit(state["rng"])
    (bundle / "state.json").write_text(json.dumps(state))
    return bundle


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rng: rng.update(envs=rng["envs"] * 3), r"3 env RNG states \('envs'\) for an env of 1 envs"),
        (lambda rng: rng.update(envs_before_last_step="PCG64"), "not a list"),
        (lambda rng: rng.update(torch_cuda=[[[1, 2], [3, 4]]]), "CUDA RNG states are not byte vectors"),
    ],
    ids=["more-env-states-than-envs", "env-states-not-a-list", "cuda-state-not-a-vector"],
)
def test_malformed_rng_states_are_refused_before_any_is_applied(genuine_state, edit, message):
    bundle = _edited(genuine_state, edit)
    # The global generators as loading the bundle's model leaves them (load() seeds them with the model's seed)
    SACAE.load(bundle / "model.zip", env=TinyPixelEnv(), device=TEST_DEVICE)
    python_state, torch_state = random.getstate(), th.get_rng_state()
    with pytest.raises(CorruptFileError, match=message):
        resume_from_bundle(bundle, TinyPixelEnv(), algorithm_class=SACAE, device=TEST_DEVICE)
    assert random.getstate() == python_state  # none of the bundle's states was applied
    assert th.equal(th.get_rng_state(), torch_state)


def test_genuine_rng_states_resume(genuine_state):
    bundle = _edited(genuine_state, lambda rng: None)
    model = resume_from_bundle(bundle, TinyPixelEnv(), algorithm_class=SACAE, device=TEST_DEVICE)
    assert model.num_timesteps == 20
