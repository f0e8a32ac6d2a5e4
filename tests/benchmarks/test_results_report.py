"""``benchmarks/report.py`` builds the results and performance pages from the CSVs alone, and the committed pages and
README table are what it builds from the committed CSVs."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import report  # noqa: E402

LEARNING_FIELDS = ["agent_steps", "env_frames", "eval_mean_return", "eval_std_return", "wall_time_s", "eval_time_s"]


def write_run(results: Path, run: str, env: str, finals: dict[int, float], action_repeat: int = 8, **hyperparams) -> None:
    """A learning run as benchmarks/learning.py writes it: a CSV per seed and a settings file per seed."""
    env_dir = results / run / env
    env_dir.mkdir(parents=True)
    steps = 100_000 // action_repeat
    for seed, final in finals.items():
        with (env_dir / f"{seed}.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(LEARNING_FIELDS)
            writer.writerow([0, 0, 10.0, 1.0, 20.0, 20.0])
            writer.writerow([steps, steps * action_repeat, final, 5.0, 3600.0, 300.0])
        settings = {
            "command": f"python benchmarks/learning.py --seeds {seed} --out /somewhere/else/{run}",
            "date": "2026-01-02T03:04:05",
            "code": {"sb3_sacae": "9.9.9"},
            "machine": {"cpu": "Test CPU", "nproc": 4, "gpu": "", "torch": "2.0", "python": "3.11"},
            "steps": steps,
            "seeds": [seed],
            "seed": seed,
            "hyperparams": hyperparams,
            "threads": 2,
        }
        (env_dir / f"settings-seed{seed}.json").write_text(json.dumps(settings))


def test_every_results_folder_is_picked_up_and_fewer_than_three_seeds_are_labelled(tmp_path):
    write_run(tmp_path, "full", "DMC-cartpole-swingup-v0", {0: 300.0, 1: 310.0, 2: 320.0})
    write_run(tmp_path, "new-option", "DMC-cartpole-swingup-v0", {0: 700.0}, random_shift=4)

    page = report.results_page(report.find_learning_results(tmp_path))

    assert "## `full`: DMC-cartpole-swingup-v0" in page and "## `new-option`: DMC-cartpole-swingup-v0" in page
    assert "| DMC-cartpole-swingup-v0 | paper hyperparameters | 3 seeds | **310 +/- 8** at 100,000 frames |" in page
    assert "`random_shift=4` | 1 seed (fewer than 3: not a result yet) | **700** at 100,000 frames" in page


def test_configurations_of_three_seeds_are_compared_on_one_figure(tmp_path):
    finals = {0: 300.0, 1: 310.0, 2: 320.0}
    write_run(tmp_path, "paper", "DMC-cartpole-swingup-v0", finals, bf16_autocast=True)
    write_run(tmp_path, "shift", "DMC-cartpole-swingup-v0", finals, bf16_autocast=True, random_shift=4)
    write_run(tmp_path, "one-seed", "DMC-cartpole-swingup-v0", {0: 700.0}, bf16_autocast=True, critic_shifts=2)
    write_run(tmp_path, "alone", "DMC-walker-walk-v0", finals, action_repeat=2)
    results = report.find_learning_results(tmp_path)

    compared = report.compared_results(results)
    assert {env: [result.run for result in group] for env, group in compared.items()} == {
        "DMC-cartpole-swingup-v0": ["paper", "shift"]  # the 1-seed run is no result yet; walker has one configuration
    }
    figure = "\n".join(report.comparison_figures(results))
    assert (
        "![DMC-cartpole-swingup-v0: the configurations of 3 seeds or more](DMC-cartpole-swingup-v0-configurations.png)"
        in figure
    )
    assert "Every run also sets `bf16_autocast=True`." in figure

    # the README shows it from the repository's root
    assert "](docs/_generated/DMC-cartpole-swingup-v0-configurations.png)" in "\n".join(
        report.comparison_figures(results, "docs/_generated/")
    )

    report.draw_plots(results, tmp_path, tmp_path)
    assert (tmp_path / "DMC-cartpole-swingup-v0-configurations.png").read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / "DMC-walker-walk-v0-configurations.png").exists()


def test_deepmind_control_results_sit_next_to_the_published_values(tmp_path):
    write_run(tmp_path, "run", "DMC-cartpole-swingup-v0", {0: 300.0, 1: 310.0, 2: 320.0})

    table = report.summary_table(report.find_learning_results(tmp_path))

    assert table.splitlines()[2].endswith("| 311 +/- 11 | 759 +/- 92 |")  # SAC+AE, DrQ at 100k frames


def test_each_result_shows_its_command_date_machine_and_package_version(tmp_path):
    write_run(tmp_path, "run", "PendulumPixels-v1", {0: -150.0}, action_repeat=2)

    page = report.results_page(report.find_learning_results(tmp_path))

    assert "python benchmarks/learning.py --seeds 0 --out benchmarks/results/run" in page  # where the files are
    assert "2026-01-02T03:04:05 on Test CPU, 4 cores, no GPU, torch 2.0" in page and "sb3_sacae 9.9.9" in page
    assert "Share of it spent evaluating: seed 0 9 %" in page  # (20 + 300) s of 3600 s


def test_a_seed_still_running_is_labelled(tmp_path):
    write_run(tmp_path, "run", "DMC-cartpole-swingup-v0", {0: 300.0})
    settings_path = tmp_path / "run" / "DMC-cartpole-swingup-v0" / "settings-seed0.json"
    settings_path.write_text(json.dumps({**json.loads(settings_path.read_text()), "steps": 25_000}))

    (result,) = report.find_learning_results(tmp_path)

    assert report.seeds_label(result).endswith("seed 0 still running")


def throughput_row(date: str, steps_per_s: float, sacae_kwargs: str = "{}", sac: float | None = None) -> dict:
    row = {field: "" for field in ["cpu", "nproc", "gpu", "torch", "device", "threads", "image_size", "batch_size"]}
    row.update(cpu="Test CPU", nproc="2", torch="2.0", device="cpu", threads="2", image_size="84", batch_size="128")
    row.update(date=date, steps="20", warmup="3", sacae_kwargs=sacae_kwargs, policy_kwargs="{}")
    row.update(sacae_steps_per_s=str(steps_per_s), sacae_gflop_per_step="126.4", sac_gflop_per_step="33.1" if sac else "")
    row.update(sac_steps_per_s=str(sac) if sac else "", ratio=f"{steps_per_s / sac:.4f}" if sac else "")
    return row


def test_speed_ratios_compare_rows_of_the_same_session_only():
    rows = [
        throughput_row("2026-01-01T10:00:00", 4.0, sac=8.0),  # a faster day
        throughput_row("2026-01-02T10:00:00", 2.0, sac=5.0),
        throughput_row("2026-01-02T10:01:00", 3.0, '{"bf16_autocast": true}'),
    ]

    sessions = report.sessions(rows)
    table = "\n".join(report.session_table(sessions[-1]))

    assert [len(session) for session in sessions] == [1, 2]
    assert "| exact default (float32) | 1 | 2.00 | 1.00 | 0.40 | 126.4 |" in table
    assert "| `bf16_autocast=True` | 1 | 3.00 | 1.50 | - | 126.4 |" in table  # 3.0 / 2.0, not 3.0 / 4.0
    assert "| SB3 SAC `CnnPolicy` (reference point) | 1 | 5.00 | 2.50 | 1.00 | 33.1 |" in table
    assert report.speed_line(rows).startswith("2026-01-02, Test CPU, 2 cores, cpu: the exact default 0.40x")
    assert "(SACAE's does 3.8x its floating-point work)" in report.speed_line(rows)  # 126.4 / 33.1 GFLOP per update


def test_comparisons_in_one_process_get_a_table_and_their_commands():
    row = {key: "" for key in ["cpu", "nproc", "gpu", "torch", "image_size", "batch_size", "this_code", "other_code"]}
    row.update(date="2026-01-02T10:00:00", cpu="Test CPU", device="cpu", threads="2", steps="40", warmup="3")
    row.update(sacae_kwargs='{"bf16_autocast": true}', policy_kwargs="{}", this_ms_mean="500.0", other_ms_mean="550.0")
    row.update(this_ms_median="498.0", other_ms_median="549.0", change="0.1000", other="earlier code")
    versus = {**row, "other": 'SACAE {"bf16_autocast": true, "reuse_critic_features": true}', "change": "-0.2000"}
    stacked = {**versus, "frame_stack": "3", "date": "2026-01-03T10:00:00"}
    official = {**row, "other": report.OFFICIAL_LABEL}
    quoted = {**row, "other": "the code's update before it's split"}
    compiled = {**row, "other": "the same SACAE, its networks under torch.compile(mode='reduce-overhead')"}

    page = report.performance_page([], [row, versus, stacked, official, quoted, compiled])

    assert (
        "| 2026-01-02 | Test CPU, 2 thread(s), cpu, independent stacks in SB3's `ReplayBuffer` | `bf16_autocast=True` "
        "| earlier code | 40 | 500.0 | 550.0 | +10.0 % |" in page
    )
    assert "| -20.0 % |" in page
    # rows timed with --frame-stack say so, and their command repeats it
    assert "| 2026-01-03 | Test CPU, 2 thread(s), cpu, 3 stacked frames in SACAE's `FrameStackReplayBuffer` |" in page
    assert "--threads 2 --frame-stack 3 --sacae-kwargs" in page
    assert (
        "python benchmarks/throughput.py --steps 40 --warmup 3 --threads 2 --sacae-kwargs "
        """'{"bf16_autocast": true}' --skip-sac --baseline-code PATH --baseline-label 'earlier code' --versus-csv"""
    ) in page
    assert """--versus '{"bf16_autocast": true, "reuse_critic_features": true}'""" in page
    # the official implementation's rows name its own option; labels are quoted for the shell
    assert """'{"bf16_autocast": true}' --skip-sac --reference-code PATH --versus-csv""" in page
    assert "--baseline-label 'the code'\"'\"'s update before it'\"'\"'s split' --versus-csv" in page
    # torch.compile's rows name the mode their command compiles with
    assert """'{"bf16_autocast": true}' --skip-sac --versus-compile reduce-overhead --versus-csv""" in page
    assert report.performance_page([], []).count("## Comparisons") == 0


def test_replay_sampling_rows_get_a_table_and_their_commands():
    row = {"date": "2026-01-03T10:00:00", "cpu": "Test CPU", "nproc": "16", "gpu": "Test GPU", "torch": "2.0"}
    row.update(device="cuda", image_size="84", frame_stack="3", channels_per_frame="3", batch_size="128")
    row.update(transitions="100000", samples="200", host_ms_mean="4.0000", device_ms_mean="0.5000")
    row.update(host_ms_median="3.9000", device_ms_median="0.4000", change="-0.8750")

    page = report.performance_page([], [], [row])

    assert "| 2026-01-03 | Test CPU, Test GPU, cuda | 3 x 3x84x84 | 128 | 100,000 | 4.000 | 0.500 | -87.5 % |" in page
    assert (
        "python benchmarks/sampling.py --device cuda --image-size 84 --frame-stack 3 --channels-per-frame 3 "
        "--batch-size 128 --transitions 100000 --samples 200 --csv benchmarks/results/sampling.csv"
    ) in page
    assert report.performance_page([], [], []).count("## Replay sampling") == 0


def test_readme_needs_its_marker_comments():
    with pytest.raises(ValueError, match="marker comments"):
        report.replace_between("# README without markers\n", report.README_START, report.README_END, "table")


def test_committed_pages_and_readme_table_are_up_to_date_with_the_csvs():
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "report.py"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_replay_memory_page_shows_the_newest_run_against_sb3s_buffer():
    row = {"cpu": "Test CPU", "nproc": "2", "gpu": "", "torch": "2.0", "device": "cpu", "threads": "2", "malloc": "tuned"}
    row.update(transitions="20000", episode_length="125", batch_size="128", repeats="300", add_us="20.0")
    row.update(loadavg_before="0.10 0.20 0.30", loadavg_after="0.10 0.20 0.30", sample_ms_median="1.5")
    old = {**row, "date": "2026-01-01T10:00:00", "buffer": "SB3 ReplayBuffer", "bytes_per_transition": "99999.0"}
    sb3 = {**row, "date": "2026-01-02T10:00:00", "buffer": "SB3 ReplayBuffer", "bytes_per_transition": "127040.0"}
    shared = {**sb3, "date": "2026-01-02T10:00:30", "buffer": "FrameStackReplayBuffer(frame_stack=3)"}
    shared["bytes_per_transition"] = "21448.0"

    page = report.replay_memory_page([old, sb3, shared])

    assert "| SB3 ReplayBuffer | 127,040 | 118.3 GiB | 1.00x | 1.50 ms | 20 us |" in page
    assert "| FrameStackReplayBuffer(frame_stack=3) | 21,448 | 20.0 GiB | 0.17x |" in page
    assert "99,999" not in page  # an older run
    assert "--transitions 20000 --episode-length 125 --batch-size 128 --repeats 300 --csv" in page
    assert "2 thread(s), tuned malloc" in page and "--plain-malloc" not in page
    assert "--threads 2 --plain-malloc --transitions" in report.replay_memory_page([{**sb3, "malloc": "plain"}])
    assert "No replay memory measurements" in report.replay_memory_page([])


def test_rows_name_the_cpus_capability_where_recorded():
    # one model name may be an AVX2 or an AVX-512 machine, which differ for bfloat16: sessions and tables tell them apart
    row = throughput_row("2026-01-02T10:00:00", 2.0, sac=5.0)
    wide = {**row, "cpu_capability": "AVX512", "date": "2026-01-02T10:01:00"}

    assert report.cpu_text(row) == "Test CPU" and report.cpu_text(wide) == "Test CPU (AVX512)"
    assert len(report.sessions([row, wide])) == 2
    assert report.speed_line([row, wide]).startswith("2026-01-02, Test CPU (AVX512), 2 cores, cpu:")
