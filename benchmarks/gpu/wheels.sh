#!/usr/bin/env bash
# Gathers, into .whl/ at the repository root, the wheels that benchmarks/gpu/check.sh installs on a GPU machine whose
# Python (3.12) has torch, numpy, pandas, matplotlib, cloudpickle, pytest and pytest-xdist but not the RL packages. Run it here,
# from the repository root, on a machine that reaches PyPI; each version is the one installed here.
set -euo pipefail
cd "$(dirname "$0")/../.."
packages=(gymnasium farama-notifications stable-baselines3 sb3-contrib)
pins=()
for name in "${packages[@]}"; do
  pins+=("$name==$(python -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")")
done
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$tag")
done
rm -rf .whl && mkdir .whl
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
  -d .whl "${pins[@]}"
ls .whl
