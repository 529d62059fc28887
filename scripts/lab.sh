#!/usr/bin/env bash
# Start JupyterLab on notebooks/ with the project's kernel (after set-up).
#   HEADLESS=1  do not open a browser (also when there is no display); the URL, with its token,
#               is printed either way.  LAB_PORT (default 8888).  Extra arguments go to jupyter lab.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=env.sh
source "$repo/scripts/env.sh"
args=(--notebook-dir="$repo/notebooks" --port="${LAB_PORT:-8888}"
    --MappingKernelManager.default_kernel_name=llm-from-scratch)
if [ -n "${HEADLESS:-}" ] || { [ "$(uname)" != Darwin ] && [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; }; then
    args+=(--no-browser)
fi
# Containers and CI machines often run as root, which Jupyter refuses without this flag.
if [ "$(id -u)" = 0 ]; then
    args+=(--allow-root)
fi
exec jupyter lab "${args[@]}" "$@"
