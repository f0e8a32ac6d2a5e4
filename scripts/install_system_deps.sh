#!/usr/bin/env bash
# System packages that sb3-sacae's pixel environments, videos and Optuna tests need (Debian/Ubuntu).
#
#   libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0   MuJoCo / dm_control headless rendering, MUJOCO_GL=egl
#   libosmesa6                                        MuJoCo / dm_control software rendering, MUJOCO_GL=osmesa
#   libgl1 libglib2.0-0                               OpenGL loader, glib (pygame, opencv)
#   ffmpeg                                            replay videos (rl_zoo3.record_video, Hub push)
#   postgresql                                        distributed Optuna study tests (PostgreSQL storage)
#
# Idempotent: packages already installed are skipped. Without root (and without passwordless sudo) it prints
# the command to run instead and exits 0, so it can sit in any set-up script.
# After installing, no display is needed: sb3_sacae sets MUJOCO_GL=egl when it is unset.
set -euo pipefail

PACKAGES=(libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0 libosmesa6 libgl1 libglib2.0-0 ffmpeg postgresql)

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_system_deps.sh: no apt-get here; install the equivalents of: ${PACKAGES[*]}" >&2
    exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install_system_deps.sh: all system packages present (${PACKAGES[*]})"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    echo "install_system_deps.sh: not root; skipping. Run as root:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 0
fi

echo "install_system_deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
