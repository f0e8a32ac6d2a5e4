"""The benchmark scripts run end to end at tiny scale (tiny images and nets, a handful of steps) and write their outputs."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sb3_sacae.accel.bf16 import bf16_kernels_available

ROOT = Path(__file__).resolve().parents[2]
TINY_SACAE_POLICY = json.dumps(dict(features_dim=8, n_filters=8, net_arch=[16, 16]))


def run_script(script: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, f"{script} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed.stdout


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_throughput_times_both_models_and_appends_a_csv_row(tmp_path):
    out = tmp_path / "throughput.csv"
    tiny = [
        "--image-size", "40", "--batch-size", "8", "--transitions", "16", "--steps", "2", "--warmup", "1",
        "--threads", "1", "--peak-size", "128", "--policy-kwargs", TINY_SACAE_POLICY,
        "--sac-policy-kwargs", json.dumps(dict(net_arch=[16], features_extractor_kwargs=dict(features_dim=16))),
    ]  # fmt: skip
    out.write_text("")  # an empty file gets the header
    stdout = run_script("throughput.py", *tiny, "--csv", str(out))

    assert "SACAE / SAC steps per second" in stdout and "peak: float32" in stdout
    (row,) = read_csv(out)
    assert float(row["sacae_steps_per_s"]) > 0 and float(row["sac_steps_per_s"]) > 0
    assert row["cpu_capability"] == torch.backends.cpu.get_cpu_capability()  # AVX2 and AVX-512 machines told apart
    assert float(row["ratio"]) == pytest.approx(float(row["sacae_steps_per_s"]) / float(row["sac_steps_per_s"]), rel=1e-3)
    assert float(row["sacae_gflop_per_step"]) > 0 and float(row["sac_gflop_per_step"]) > 0
    assert float(row["peak_fp32_gflops"]) > 0 and float(row["peak_bf16_gflops"]) > 0
    assert 0 < float(row["sacae_fraction_fp32_peak"])
    assert row["image_size"] == "40" and row["batch_size"] == "8" and row["threads"] == "1"
    assert json.loads(row["policy_kwargs"]) == json.loads(TINY_SACAE_POLICY)


def test_throughput_with_stacked_frames_times_sacae_on_its_frame_stack_buffer(tmp_path):
    out = tmp_path / "throughput.csv"
    tiny = [
        "--image-size", "40", "--batch-size", "8", "--transitions", "16", "--steps", "2", "--warmup", "1",
        "--threads", "1", "--peak-size", "128", "--policy-kwargs", TINY_SACAE_POLICY, "--skip-sac", "--frame-stack", "3",
    ]  # fmt: skip
    stdout = run_script("throughput.py", *tiny, "--csv", str(out))
    assert "SACAE's replay buffer FrameStackReplayBuffer" in stdout
    (row,) = read_csv(out)
    assert row["frame_stack"] == "3" and float(row["sacae_steps_per_s"]) > 0


def test_throughput_refuses_stacks_that_do_not_divide_the_channels():
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--frame-stack", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2 and "--frame-stack must divide --channels (9)" in completed.stderr


def test_throughput_profile_splits_a_step_into_ops_and_groups():
    tiny = [
        "--image-size", "40", "--batch-size", "8", "--transitions", "16", "--steps", "1", "--warmup", "1",
        "--threads", "1", "--peak-size", "128", "--policy-kwargs", TINY_SACAE_POLICY, "--skip-sac", "--profile", "2",
    ]  # fmt: skip
    stdout = run_script("throughput.py", *tiny)
    lines = stdout[stdout.index("profile of 2 SACAE steps") :].splitlines()
    total = float(lines[0].split(": ")[1].split(" ms")[0])
    cells = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines[1:]]
    split = cells.index(["group", "ms/step"])
    op_rows, group_rows = cells[2:split], cells[split + 2 :]
    groups = {name: float(ms) for name, ms in group_rows}
    assert groups["convolutions and transposed convolutions"] > 0 and "other" in groups
    assert sum(groups.values()) == pytest.approx(total, abs=0.1 * len(groups))  # every op in exactly one group
    assert 0 < len(op_rows) <= 15 and all(float(ms) >= 0 and float(calls) > 0 for _, ms, calls in op_rows)


def test_learning_writes_one_csv_per_seed_and_the_plot_summarises_them(tmp_path):
    hyperparams = {"batch_size": 8, "learning_starts": 10, "policy_kwargs": json.loads(TINY_SACAE_POLICY)}
    stdout = run_script(
        "learning.py",
        "--env", "PendulumPixels-v1", "--env-kwargs", json.dumps({"image_size": 32, "episode_length": 20}),
        "--steps", "20", "--seeds", "0", "1", "--eval-freq", "10", "--eval-episodes", "1",
        "--hyperparams", json.dumps(hyperparams), "--threads", "1", "--out", str(tmp_path),
    )  # fmt: skip
    env_dir = tmp_path / "PendulumPixels-v1"
    assert "final evaluation return" in stdout
    for seed in (0, 1):
        rows = read_csv(env_dir / f"{seed}.csv")
        assert [int(row["agent_steps"]) for row in rows] == [0, 10, 20]
        assert int(rows[0]["env_frames"]) == 0 and int(rows[-1]["env_frames"]) > int(rows[-1]["agent_steps"])
        assert all(float(row["eval_std_return"]) >= 0 for row in rows)
        wall = [float(row["wall_time_s"]) for row in rows]
        assert wall == sorted(wall) and wall[-1] > 0
        eval_times = [float(row["eval_time_s"]) for row in rows]
        assert all(t > 0 for t in eval_times) and sum(eval_times) < wall[-1]
        assert (env_dir / "evaluations" / str(seed) / "evaluations.npz").exists()
        seed_settings = json.loads((env_dir / f"settings-seed{seed}.json").read_text())
        assert seed_settings["seed"] == seed and seed_settings["threads"] == 1
        assert seed_settings["code"]["sb3_sacae"] and "command" in seed_settings and "cpu" in seed_settings["machine"]
        assert seed_settings["machine"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert "% of the wall time" in stdout
    settings = json.loads((env_dir / "settings.json").read_text())
    assert settings["steps"] == 20 and settings["seeds"] == [0, 1] and settings["hyperparams"]["batch_size"] == 8

    png = tmp_path / "curve.png"
    stdout = run_script(
        "plot_learning.py", "--results", str(tmp_path), "--env", "PendulumPixels-v1", "--x", "env_frames",
        "--reference", "target=-200", "--reference", "DrQ=759+-92", "--out", str(png), "--by-step",
    )  # fmt: skip
    assert png.stat().st_size > 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = next(line for line in stdout.splitlines() if line.startswith("| PendulumPixels-v1"))
    final = [float(read_csv(env_dir / f"{seed}.csv")[-1]["eval_mean_return"]) for seed in (0, 1)]
    assert f"{sum(final) / 2:.1f} +/-" in summary and "| 0, 1 |" in summary
    untrained = next(line for line in stdout.splitlines() if line.startswith("| 0 |"))  # env frame 0, both seeds
    first = [float(read_csv(env_dir / f"{seed}.csv")[0]["eval_mean_return"]) for seed in (0, 1)]
    assert "(2)" in untrained and untrained.rstrip(" |").endswith(f"{first[0]:.0f} | {first[1]:.0f}")


def test_kernels_compares_each_speed_lever():
    out = run_script("kernels.py", "--batch-size", "2", "--repeats", "1", "--threads", "1")
    rows = [line for line in out.splitlines() if line.startswith("| ") and "kernel" not in line]
    assert len(rows) == 11 and all(line.rstrip().endswith("x |") for line in rows)
    assert any(line.startswith("page faults per round of 8 x 24 MB blocks:") for line in out.splitlines())


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_alternatives_time_equivalent_formulations(dtype):
    if dtype == "bfloat16" and not bf16_kernels_available("cpu"):
        pytest.skip("this CPU has no oneDNN bfloat16 kernels (test_alternatives_refuses_bfloat16_without_onednn_support)")
    out = run_script("alternatives.py", "--batch-size", "2", "--repeats", "1", "--threads", "1", "--dtype", dtype)
    rows = [line for line in out.splitlines() if " -> " in line and not line.startswith("kernel")]
    assert len(rows) == 7
    # every alternative computes the adopted values: float32 to rounding, bfloat16 to about one bf16 step
    tolerance = 1e-5 if dtype == "float32" else 1e-2
    assert all(float(line.split()[-1]) <= tolerance for line in rows), out


@pytest.mark.skipif(bf16_kernels_available("cpu"), reason="this CPU has oneDNN bfloat16 kernels")
def test_alternatives_refuses_bfloat16_without_onednn_support():
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "alternatives.py"), "--batch-size", "2", "--repeats", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert completed.returncode == 2 and "pass --dtype float32" in completed.stderr


TINY_THROUGHPUT = [
    "--image-size", "40", "--batch-size", "8", "--transitions", "16", "--steps", "2", "--warmup", "1",
    "--threads", "1", "--peak-size", "128", "--policy-kwargs", TINY_SACAE_POLICY, "--skip-sac",
]  # fmt: skip


def comparison_rows(stdout: str) -> tuple[list[list[str]], str]:
    """The two model rows of the alternating-steps table and the line that states the change."""
    lines = stdout[stdout.index("in one process, 2 alternating steps each") :].splitlines()
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines[3:5]]
    assert all(float(mean) > 0 and float(median) > 0 and float(rate) > 0 for _, mean, median, rate in rows)
    return rows, lines[5]


def test_throughput_versus_times_two_sacae_models_alternately(tmp_path):
    versus_csv = tmp_path / "versus.csv"
    args = ["--versus", json.dumps({"reuse_critic_features": True}), "--versus-csv", str(versus_csv)]
    rows, change = comparison_rows(run_script("throughput.py", *TINY_THROUGHPUT, *args))
    assert rows[0][0] == "SACAE {} (this code)" and rows[1][0] == 'SACAE {"reuse_critic_features": true}'
    assert change.startswith('step time of SACAE {"reuse_critic_features": true} against this code: ')
    (row,) = read_csv(versus_csv)
    # the table prints one decimal and the CSV two: each rounding moves the value by up to half its last digit
    assert row["other"] == rows[1][0] and float(row["this_ms_mean"]) == pytest.approx(float(rows[0][1]), abs=0.056)
    assert float(row["change"]) == pytest.approx(float(row["other_ms_mean"]) / float(row["this_ms_mean"]) - 1, abs=1e-3)


@pytest.mark.slow  # compiling takes most of a minute
def test_throughput_versus_compile_times_the_same_model_with_compiled_networks(tmp_path):
    versus_csv = tmp_path / "versus.csv"
    plain = ["--sacae-kwargs", json.dumps({"fast_kernels": False})]
    args = [*plain, "--versus-compile", "default", "--versus-csv", str(versus_csv)]
    stdout = run_script("throughput.py", *TINY_THROUGHPUT, *args)

    rows, change = comparison_rows(stdout)
    label = "the same SACAE, its networks under torch.compile(mode='default')"
    assert rows[0][0] == 'SACAE {"fast_kernels": false} (this code)' and rows[1][0] == label
    assert f"compiling {label}: " in stdout and change.startswith(f"step time of {label} against this code: ")
    (row,) = read_csv(versus_csv)
    assert row["other"] == label and json.loads(row["sacae_kwargs"]) == {"fast_kernels": False}


def test_throughput_versus_compile_on_the_cpu_asks_for_the_onednn_linears_off():
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "throughput.py"), *TINY_THROUGHPUT, "--versus-compile", "default"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert completed.returncode == 2 and """add --policy-kwargs '{"onednn_linear": false}'""" in completed.stderr


def test_throughput_times_another_checkout_with_its_own_code(tmp_path):
    """--baseline-code imports a second sb3_sacae beside this one; each model runs its own package's modules."""
    other = tmp_path / "other"
    shutil.copytree(ROOT / "sb3_sacae", other / "sb3_sacae", ignore=shutil.ignore_patterns("__pycache__"))
    (other / "sb3_sacae" / "version.txt").write_text("0.0.0.other\n")
    marks = tmp_path / "marks.txt"
    with (other / "sb3_sacae" / "sacae.py").open("a") as module:  # every train() of the copy says which module it sees
        module.write(
            "\n_train = SACAE.train\n\n"
            "def _marked_train(self, *args, **kwargs):\n"
            "    import importlib, pathlib\n"
            f"    with open({str(marks)!r}, 'a') as marks:\n"
            "        marks.write(importlib.import_module('sb3_sacae.sacae').__file__ + '\\n')\n"
            "    return _train(self, *args, **kwargs)\n\n"
            "SACAE.train = _marked_train\n"
        )
    versus_csv = tmp_path / "versus.csv"
    args = ["--baseline-code", str(other), "--baseline-label", "the copy", "--versus-csv", str(versus_csv)]
    rows, change = comparison_rows(run_script("throughput.py", *TINY_THROUGHPUT, *args))
    assert [row[0] for row in rows] == ["SACAE {} (this code)", "the copy"]
    assert change.startswith("step time of the copy against this code: ")
    seen = marks.read_text().splitlines()
    assert len(seen) == 2 + 1 and set(seen) == {str(other / "sb3_sacae" / "sacae.py")}  # warm-up call + 2 timed steps
    (row,) = read_csv(versus_csv)
    assert row["other"] == "the copy" and row["other_code"] == ""  # the copy is outside git


OFFICIAL_STAND_IN = {
    # the official clone's interface, as benchmarks/other_code.py uses it: utils.ReplayBuffer and sac_ae.SacAeAgent
    "utils.py": """
import gym  # the official utils imports the old gym for a wrapper; the benchmark lets Gymnasium stand in
import numpy as np
import torch


class FrameStack(gym.Wrapper):
    pass


class ReplayBuffer:
    def __init__(self, obs_shape, action_shape, capacity, batch_size, device):
        self.obses = np.zeros((capacity, *obs_shape), np.uint8)
        self.batch_size, self.idx = batch_size, 0

    def add(self, obs, action, reward, next_obs, done):
        self.obses[self.idx] = obs
        self.idx += 1

    def sample(self):
        return torch.as_tensor(self.obses[np.random.randint(0, self.idx, self.batch_size)]).float()
""",
    "sac_ae.py": """
import os

import utils


class SacAeAgent:
    def __init__(self, obs_shape, action_shape, device, **settings):
        self.settings = settings

    def update(self, replay_buffer, L, step):
        L.log("train/batch_reward", 0.0, step)
        obs = replay_buffer.sample()
        with open(os.environ["OFFICIAL_MARKS"], "a") as marks:
            marks.write(f"{step} {tuple(obs.shape)} {replay_buffer.idx} {sorted(self.settings)[:2]}\\n")
""",
}


def test_throughput_times_the_official_update_from_a_clone(tmp_path, monkeypatch):
    clone = tmp_path / "pytorch_sac_ae"
    clone.mkdir()
    for name, text in OFFICIAL_STAND_IN.items():
        (clone / name).write_text(text)
    marks = tmp_path / "marks.txt"
    monkeypatch.setenv("OFFICIAL_MARKS", str(marks))
    sizes = [*TINY_THROUGHPUT]
    sizes[sizes.index("--image-size") + 1] = "84"  # the official encoder supports 84x84 only
    rows, change = comparison_rows(run_script("throughput.py", *sizes, "--reference-code", str(clone)))

    assert [row[0] for row in rows] == ["SACAE {} (this code)", "official pytorch_sac_ae"]
    assert change.startswith("step time of official pytorch_sac_ae against this code: ")
    # one warm-up and two timed updates, numbered as the official loop does, on the 16 transitions SACAE got too
    assert marks.read_text().splitlines() == [f"{step} (8, 9, 84, 84) 16 ['alpha_beta', 'alpha_lr']" for step in (1, 2, 3)]


def test_throughput_refuses_a_folder_that_is_not_the_official_code(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "throughput.py"), *TINY_THROUGHPUT, "--reference-code", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert (
        completed.returncode != 0 and "holds no sac_ae.py: give the root of a clone of the official code" in completed.stderr
    )


def test_sampling_times_host_and_device_gathers_of_the_same_batches(tmp_path):
    out = tmp_path / "sampling.csv"
    tiny = ["--image-size", "16", "--batch-size", "8", "--transitions", "250", "--samples", "4", "--warmup", "1"]
    stdout = run_script("sampling.py", *tiny, "--csv", str(out))

    assert "| host |" in stdout and "| device |" in stdout and "sampling on the device:" in stdout
    (row,) = read_csv(out)
    assert float(row["host_ms_mean"]) > 0 and float(row["device_ms_mean"]) > 0
    assert float(row["change"]) == pytest.approx(float(row["device_ms_mean"]) / float(row["host_ms_mean"]) - 1, rel=1e-2)
    assert row["frame_stack"] == "3" and row["transitions"] == "250" and row["device"] == "cpu"


def test_replay_memory_counts_each_buffers_bytes_and_appends_a_row_per_buffer(tmp_path):
    out = tmp_path / "replay_memory.csv"
    tiny = ["--transitions", "300", "--episode-length", "50", "--batch-size", "16", "--repeats", "3", "--threads", "1"]
    stdout = run_script("replay_memory.py", *tiny, "--csv", str(out))

    assert "| FrameStackReplayBuffer(frame_stack=3) |" in stdout and f"appended to {out}" in stdout
    rows = {row["buffer"]: row for row in read_csv(out)}
    per_transition = {name: float(row["bytes_per_transition"]) for name, row in rows.items()}
    observation = 9 * 84 * 84
    # SB3 stores obs and next_obs whole, optimize_memory_usage obs only, the frame-stack buffer about one frame
    assert 2 * observation < per_transition["SB3 ReplayBuffer"] < 2 * observation + 100
    assert observation < per_transition["SB3 ReplayBuffer, optimize_memory_usage"] < observation + 100
    assert observation / 3 < per_transition["FrameStackReplayBuffer(frame_stack=3)"] < observation / 2
    assert all(row["transitions"] == "300" and float(row["sample_ms_median"]) > 0 for row in rows.values())
    assert {row["malloc"] for row in rows.values()} == {"tuned"}  # the CPU default, as in throughput.py
    assert {row["cpu_capability"] for row in rows.values()} == {torch.backends.cpu.get_cpu_capability()}
