"""The code the documentation shows runs: the README's quick start, the algorithm page's examples and the design
page's recipe for the original code's burst of updates, each executed as written with tiny networks, images and
step counts (``tests/docs/conftest.py``)."""

import itertools
import re
from pathlib import Path

import pytest
import torch as th

from sb3_sacae import SACAE
from tests.conftest import tiny_model
from tests.docs.conftest import MAX_STEPS

ROOT = Path(__file__).resolve().parents[2]


def python_blocks(path: Path, start: str, end: str) -> list[str]:
    """The ```python blocks of ``path`` between the first line containing ``start`` and the next containing ``end``."""
    text = path.read_text(encoding="utf-8")
    begin = text.index(start)
    section = text[begin : text.index(end, begin + len(start))]
    blocks = re.findall(r"^```python\n(.*?)^```", section, flags=re.S | re.M)
    if not blocks:
        raise ValueError(f"no python code blocks in {path} between {start!r} and {end!r}")
    return blocks


def run(code: str) -> dict:
    namespace: dict = {}
    exec(compile(code, "<documentation example>", "exec"), namespace)
    return namespace


def test_readme_quick_start_trains_saves_loads_and_predicts(tiny_examples):
    (code,) = python_blocks(ROOT / "README.md", "<!-- quickstart:start -->", "<!-- quickstart:end -->")
    namespace = run(code)

    assert (tiny_examples / "sacae_pendulum.zip").exists()
    assert namespace["model"].num_timesteps == MAX_STEPS
    assert namespace["env"].action_space.contains(namespace["action"])


def test_algorithm_page_pendulum_example_runs(tiny_examples):
    code = python_blocks(ROOT / "docs" / "modules" / "sacae.md", "## Example", "## Results")[0]
    namespace = run(code)

    assert isinstance(namespace["model"], SACAE) and namespace["model"].num_timesteps == MAX_STEPS
    assert (tiny_examples / "sacae_pendulum.zip").exists()


def test_algorithm_page_drq_example_runs_on_deepmind_control(tiny_examples):
    pytest.importorskip("dm_control")
    code = python_blocks(ROOT / "docs" / "modules" / "sacae.md", "## Example", "## Results")[1]
    namespace = run(code)

    model = namespace["model"]
    assert model.random_shift == 4 and model.policy.critic_layer_norm
    assert model.env_frames == 8 * MAX_STEPS  # cartpole_swingup repeats each action 8 times


def test_design_page_burst_recipe_reproduces_the_original_update_schedule():
    (code,) = python_blocks(ROOT / "docs" / "design.md", "## Differences from the original code", "**Replay buffer size.**")
    learn_with_reference_burst = run(code)["learn_with_reference_burst"]
    warmup, total = 6, 12
    model = tiny_model(learning_starts=warmup)
    target = next(model.critic_target.parameters())
    actor_steps: list[int] = []
    critic_steps: list[tuple[int, th.Tensor]] = []  # (agent step, target parameter after this critic step)
    model.actor.optimizer.register_step_post_hook(lambda *_: actor_steps.append(model.num_timesteps))
    model.critic.optimizer.register_step_post_hook(
        lambda *_: critic_steps.append((model.num_timesteps, target.detach().clone()))
    )

    learn_with_reference_burst(model, total)

    # each update's target change shows at the next critic step: update k moved the targets iff snapshot k+1 differs
    moved = [not th.equal(a, b) for (_, a), (_, b) in itertools.pairwise(critic_steps)]
    steps = [step for step, _ in critic_steps]
    assert steps == [warmup] * warmup + list(range(warmup + 1, total + 1))  # the burst, then one update per step
    assert actor_steps[:warmup] == [warmup] * warmup  # every update of the burst updates the actor ...
    assert all(moved[:warmup])  # ... and the targets
    # afterwards, as in the original script, the actor and the targets move at even environment steps only
    assert actor_steps[warmup:] == [step for step in range(warmup + 1, total + 1) if step % 2 == 0]
    assert [step for step, m in zip(steps[warmup:], moved[warmup:], strict=False) if m] == [
        step for step in range(warmup + 1, total) if step % 2 == 0
    ]
    assert (model.actor_update_interval, model.target_update_interval) == (2, 2)  # intervals restored
