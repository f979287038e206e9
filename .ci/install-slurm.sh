#!/usr/bin/env bash
# Install a single-node SLURM stack (Debian/Ubuntu) for tests/test_slurm.py.
# Idempotent: exits quickly when every package is already installed; runs
# `apt-get update` only when a package is missing and the package lists are
# empty or the first install attempt fails.  Needs root (or passwordless sudo).
set -euo pipefail

PKGS=(slurm-wlm slurmctld slurmd slurm-client munge)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-slurm: already installed (${PKGS[*]})"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt_install() {
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

echo "install-slurm: installing ${missing[*]}"
# Fresh containers/runners often have no package lists: update only then,
# or when installing from the existing lists fails (stale lists).
if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    apt_install
elif ! apt_install; then
    $SUDO apt-get update -qq
    apt_install
fi

for b in slurmctld slurmd munged sbatch squeue scontrol sinfo; do
    command -v "$b" >/dev/null || { echo "install-slurm: $b missing after install" >&2; exit 1; }
done
echo "install-slurm: done"
