"""Models saved by an earlier development version still load and act the same.

``tests/data/sacae_box.zip`` and ``tests/data/sacae_discrete.zip`` are tiny models (the ``tests.conftest`` settings,
32 steps on ``TinyPixelEnv`` and its three-action sibling) saved by a development version that kept the
autoencoder optimizers on the policy; their deterministic actions on six fixed observations are stored beside them
in ``saved_models_expected.npz``. Any change
to the saved-model format, to the names of saved modules or optimizers, or to the forward pass shows up here.
"""

from pathlib import Path

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.save_util import load_from_zip_file

from sb3_sacae import SACAE
from tests.conftest import TEST_DEVICE

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(DATA / "saved_models_expected.npz") as archive:
        return dict(archive)


@pytest.mark.parametrize("name", ["box", "discrete"])
def test_old_zip_loads_and_predicts_the_saved_actions(expected, name):
    model = SACAE.load(DATA / f"sacae_{name}.zip", device=TEST_DEVICE)
    actions, _ = model.predict(expected["observations"], deterministic=True)
    np.testing.assert_allclose(actions, expected[f"{name}_actions"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["box", "discrete"])
def test_old_zip_restores_every_optimizer_state(name):
    model = SACAE.load(DATA / f"sacae_{name}.zip", device=TEST_DEVICE)
    optimizers = [model.actor.optimizer, model.critic.optimizer, model.ent_coef_optimizer]
    optimizers += [model.encoder_optimizer, model.decoder_optimizer]
    for optimizer in optimizers:
        steps = [state["step"] for state in optimizer.state.values()]
        assert steps and all(float(th.as_tensor(step)) > 0 for step in steps)


@pytest.mark.parametrize("name", ["box", "discrete"])
def test_old_zip_resaved_by_this_release_round_trips(tmp_path, expected, name):
    model = SACAE.load(DATA / f"sacae_{name}.zip", device=TEST_DEVICE)
    model.save(tmp_path / "again.zip")
    again = SACAE.load(tmp_path / "again.zip", device=TEST_DEVICE)
    for key, tensor in model.policy.state_dict().items():
        assert th.equal(tensor, again.policy.state_dict()[key]), key
    actions, _ = again.predict(expected["observations"], deterministic=True)
    np.testing.assert_allclose(actions, expected[f"{name}_actions"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["box", "discrete"])
@pytest.mark.parametrize("through", ["load", "set_parameters"])
def test_old_zip_autoencoder_optimizer_states_move_to_the_algorithm(name, through):
    # earlier releases kept the encoder and decoder optimizers on the policy ("policy.encoder_optimizer")
    _, saved, _ = load_from_zip_file(DATA / f"sacae_{name}.zip", device=TEST_DEVICE, load_data=False)
    model = SACAE.load(DATA / f"sacae_{name}.zip", device=TEST_DEVICE)
    if through == "set_parameters":
        model = SACAE.load(DATA / f"sacae_{name}.zip", device=TEST_DEVICE, encoder_lr=5e-4)
        model.set_parameters(DATA / f"sacae_{name}.zip", device=TEST_DEVICE)
        assert model.encoder_optimizer.param_groups[0]["lr"] == 5e-4  # the model's settings stay in force
    for optimizer in ("encoder_optimizer", "decoder_optimizer"):
        live = getattr(model, optimizer).state_dict()["state"]
        for index, state in saved[f"policy.{optimizer}"]["state"].items():
            for key, value in state.items():
                assert th.equal(th.as_tensor(live[index][key]), th.as_tensor(value)), (optimizer, index, key)
