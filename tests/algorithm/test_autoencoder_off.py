"""decoder_update_interval=0 is the paper's SAC:pixel baseline: no decoder, no autoencoder optimizers."""

import numpy as np

from sb3_sacae import SACAE
from tests.conftest import tiny_model


def test_autoencoder_off_builds_no_decoder():
    model = tiny_model(decoder_update_interval=0)
    assert model.policy.decoder is None
    assert model.encoder_optimizer is None and model.decoder_optimizer is None


def test_autoencoder_off_trains_without_reconstruction_loss():
    model = tiny_model(decoder_update_interval=0)
    model.learn(40)
    assert model._n_updates > 0
    assert "train/ae_loss" not in model.logger.name_to_value


def test_autoencoder_off_survives_save_and_load(tmp_path, env):
    model = tiny_model(decoder_update_interval=0)
    model.learn(20)
    model.save(tmp_path / "sac_pixel.zip")
    loaded = SACAE.load(tmp_path / "sac_pixel.zip", env=env, device="cpu")
    assert loaded.policy.decoder is None
    obs, _ = env.reset(seed=1)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    loaded.learn(10)
