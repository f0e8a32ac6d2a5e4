#!/usr/bin/env bash
# The GPU checks in one call, from the repository root of a machine with a CUDA GPU and torch:
#   1. update throughput at the paper's settings on CUDA: the exact default and bf16_autocast, each against SB3's SAC
#      CnnPolicy in the same process (rows for benchmarks/results/throughput.csv);
#   2. the speed options against the exact default, alternating single steps in one process (rows for
#      benchmarks/results/throughput-versus.csv), and replay sampling on the host against sampling on the GPU
#      (frames_on_device; rows for benchmarks/results/sampling.csv);
#   3. the default test suite with the models on CUDA (SACAE_TEST_DEVICE=cuda), without the folders that need
#      packages the GPU image lacks and that test no device code: the RL Zoo, the rendered environments (MuJoCo,
#      DeepMind Control, Box2D, pygame), the docs' examples and the benchmark scripts' smoke tests.
#   4. the CUDA-graphs lever, tried from the benchmark: the exact default against the same model with its networks'
#      forward passes under torch.compile(mode="reduce-overhead") (a row for benchmarks/results/throughput-versus.csv),
#      and tests/benchmarks/test_compile_networks.py on CUDA (the compiled passes compute what the eager ones do).
# Wheels in .whl/ (benchmarks/gpu/wheels.sh gathers them) are installed first. Everything lands in $OUT (default
# gpu-check/): check.log, throughput.csv, throughput-versus.csv, sampling.csv, tests.log, tests.xml,
# compile-tests.log. STEPS (default 200) timed steps per model, TEST_TIMEOUT (default 240) seconds for the tests,
# COMPILE_TIMEOUT (default 120) seconds each for the compiled comparison and its test, compilation included, within
# BUDGET (default 540) seconds for the whole script: what step 4 would overrun is skipped, and says so.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
exec > >(tee "$OUT/check.log") 2>&1
export PYTHONUNBUFFERED=1
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'torch sees no CUDA GPU')" || exit 1
if compgen -G ".whl/*.whl" > /dev/null; then
  # into python3's own environment: tests that start Python subprocesses set PYTHONPATH themselves
  wheels=(python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir)
  if ! "${wheels[@]}" .whl/*.whl; then  # a read-only environment: beside it, for this script and its children
    "${wheels[@]}" --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
  fi
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, sb3_sacae, stable_baselines3; print('torch', torch.__version__, 'sb3', stable_baselines3.__version__)" || exit 1

steps=${STEPS:-200}
time_steps=(python3 benchmarks/throughput.py --device cuda --frame-stack 3 --steps "$steps" --warmup 20)
echo "== 1. throughput: exact default and bf16_autocast, each against SB3 SAC"
"${time_steps[@]}" --csv "$OUT/throughput.csv"
"${time_steps[@]}" --sacae-kwargs '{"bf16_autocast": true}' --csv "$OUT/throughput.csv"
echo "== 2. speed options against the exact default, alternating steps"
# fast_kernels=false turns off what CUDA selects: sampling from the frames' copy on the GPU and the pinned copies,
# the fused gradient norms and the finite checks kept on the GPU
for options in '{"bf16_autocast": true}' '{"fast_kernels": false}' '{"reuse_critic_features": true}'; do
  "${time_steps[@]}" --skip-sac --versus "$options" --versus-csv "$OUT/throughput-versus.csv"
done
python3 benchmarks/sampling.py --device cuda --transitions 100000 --csv "$OUT/sampling.csv"
echo "== 3. the test suite on CUDA"
SACAE_TEST_DEVICE=cuda OMP_NUM_THREADS=1 timeout "${TEST_TIMEOUT:-240}" python3 -m pytest -m "not slow" -n 8 -q -rfE \
  -p no:cacheprovider --continue-on-collection-errors --ignore=tests/zoo --ignore=tests/envs --ignore=tests/docs --ignore=tests/benchmarks \
  --junitxml="$OUT/tests.xml" tests > "$OUT/tests.log" 2>&1
echo "pytest exit status $? (124: stopped by the timeout)"
tail -n 40 "$OUT/tests.log"
echo "== 4. torch.compile with CUDA graphs against the exact default, alternating steps"
within_budget() {  # run "$@" under a timeout of COMPILE_TIMEOUT or what is left of BUDGET, whichever is less
  local limit=${COMPILE_TIMEOUT:-120} left=$(( ${BUDGET:-540} - SECONDS ))
  if (( left < 60 )); then
    echo "skipped: ${left} s left of BUDGET=${BUDGET:-540} after ${SECONDS} s"
    return 0
  fi
  timeout "$(( left < limit ? left : limit ))" "$@"
  echo "exit status $? (124: stopped by the timeout)"
}
within_budget "${time_steps[@]}" --skip-sac --versus-compile reduce-overhead --versus-csv "$OUT/throughput-versus.csv"
# the compiled passes against the eager ones, and the update on them, with CUDA graphs on the GPU
SACAE_TEST_DEVICE=cuda within_budget python3 -m pytest -m slow -q -rfE -p no:cacheprovider \
  tests/benchmarks/test_compile_networks.py > "$OUT/compile-tests.log" 2>&1
tail -n 20 "$OUT/compile-tests.log"
