"""rl_zoo3 config files are read with a safe YAML loader that still understands what rl_zoo3 writes."""

from collections import OrderedDict

import pytest
import yaml

from sb3_sacae.serialization import UnsafeFileError, safe_load_config


def test_reads_what_rl_zoo3_writes(tmp_path):
    # rl_zoo3's ExperimentManager dumps OrderedDicts (config.yml, args.yml) with yaml.dump
    config = OrderedDict([("policy", "CnnPolicy"), ("learning_rate", 1e-3), ("train_freq", (1, "step")), ("n_timesteps", 1e5)])
    (tmp_path / "config.yml").write_text(yaml.dump(config))
    args = OrderedDict([("algo", "sacae"), ("env", "PendulumPixels-v0"), ("env_kwargs", {"size": 64}), ("seed", 3)])
    (tmp_path / "args.yml").write_text(yaml.dump(args))

    assert safe_load_config(tmp_path / "config.yml") == dict(config)
    assert safe_load_config(tmp_path / "config.yml")["train_freq"] == (1, "step")
    assert safe_load_config(tmp_path / "args.yml") == dict(args)


@pytest.mark.parametrize(
    "payload",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
        "!!python/name:os.system",
        "!!python/object/apply:collections.OrderedDict [[[a, !!python/object/apply:os.system ['touch {marker}']]]]",
    ],
)
def test_python_tags_are_refused(tmp_path, payload):
    marker = tmp_path / "pwned"
    (tmp_path / "config.yml").write_text("policy: CnnPolicy\nevil: " + payload.format(marker=marker) + "\n")
    with pytest.raises(UnsafeFileError, match=r"config\.yml"):
        safe_load_config(tmp_path / "config.yml")
    assert not marker.exists()
