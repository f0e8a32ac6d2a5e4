#!/usr/bin/env bash
# SACAE through the RL Zoo on a small Pendulum-from-pixels run, then watch, search, and stage a Hub repo.
# After `pip install -e .` use `python -m sb3_sacae.zoo <script>`; after a normal install `python -m rl_zoo3.<script>`.
set -euo pipefail
ZOO="python -m sb3_sacae.zoo"
ENV=PendulumPixels-v1
SMALL=(--env-kwargs image_size:64 frame_stack:3)

$ZOO train --algo sacae --env $ENV -n 5000 -f logs/ "${SMALL[@]}"
$ZOO enjoy --algo sacae --env $ENV -f logs/ -n 400 --no-render
$ZOO record_video --algo sacae --env $ENV -f logs/ -n 200 -o videos/
# two workers sharing one study through a journal file
for seed in 1 2; do
  $ZOO train --algo sacae --env $ENV -n 2000 -optimize --n-trials 4 --storage logs/sacae.log \
    --study-name sacae-pendulum --seed $seed --no-optim-plots "${SMALL[@]}" &
done
wait
$ZOO train --algo sacae --env $ENV -n 5000 -f logs/ --storage logs/sacae.log --study-name sacae-pendulum --trial-id 0 "${SMALL[@]}"
$ZOO push_to_hub --algo sacae --env $ENV -f logs/ -orga "${HF_USER:-me}" --local-dir hub-staging --no-upload
