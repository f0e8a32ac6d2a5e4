"""Speed of the pixel environments: agent steps/s and environment frames/s, rendering included.

    python benchmarks/env_speed.py                      # every id, 84x84, 200 agent steps each
    python benchmarks/env_speed.py --fast-render        # DMC / MuJoCo without shadows and anti-aliasing
    python benchmarks/env_speed.py --ids DMC-cheetah-run-v0 --steps 500 --json out.json

Random actions, one process, one environment; the clock starts after the first reset (which builds the
renderer). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import gymnasium as gym

from sb3_sacae.envs import PIXEL_ENVS

# ids whose factory takes ``fast_render`` (MuJoCo and DeepMind Control)
FAST_RENDER_IDS = {
    env_id
    for env_id, (entry_point, _) in PIXEL_ENVS.items()
    if entry_point.endswith(("make_dmc", "make_half_cheetah_pixels", "make_reacher_pixels"))
}


def measure(env_id: str, steps: int, image_size: int, fast_render: bool, seed: int = 0) -> dict[str, float | int | str]:
    kwargs: dict = {"image_size": image_size}
    if fast_render and env_id in FAST_RENDER_IDS:
        kwargs["fast_render"] = True
    env = gym.make(env_id, **kwargs)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    frames = 0
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        frames += info["step_env_frames"]
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - start
    result = {
        "env_id": env_id,
        "action_repeat": env.get_wrapper_attr("action_repeat"),
        "frame_stack": env.get_wrapper_attr("frame_stack"),
        "shape": "x".join(str(side) for side in env.observation_space.shape or ()),
        "agent_steps_per_s": steps / elapsed,
        "env_frames_per_s": frames / elapsed,
    }
    env.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ids", nargs="+", default=list(PIXEL_ENVS), help="environment ids (default: all)")
    parser.add_argument("--steps", type=int, default=200, help="agent steps per environment")
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--fast-render", action="store_true", help="shadows and anti-aliasing off (MuJoCo / DMC)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    results = [measure(env_id, args.steps, args.image_size, args.fast_render) for env_id in args.ids]
    print(
        f"<!-- {platform.node()}: {os.cpu_count()} CPUs, MUJOCO_GL={os.environ.get('MUJOCO_GL')}, "
        f"{args.steps} agent steps, fast_render={args.fast_render} -->"
    )
    print("| id | observation | action repeat | agent steps/s | env frames/s |")
    print("|---|---|---|---|---|")
    for r in results:
        print(
            f"| `{r['env_id']}` | {r['shape']} | {r['action_repeat']} | "
            f"{r['agent_steps_per_s']:.0f} | {r['env_frames_per_s']:.0f} |"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump({"steps": args.steps, "fast_render": args.fast_render, "results": results}, file, indent=2)


if __name__ == "__main__":
    main()
