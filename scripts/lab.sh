#!/usr/bin/env bash
# Start JupyterLab on notebooks/ with the project's kernel (after set-up).
#   HEADLESS=1  do not open a browser (also when there is no display); the URL, with its token,
#               is printed either way.  LAB_PORT (default 8888).  Extra arguments go to jupyter lab.
#   LAB_LANG=zh_CN  the lab's menus and dialogs in Chinese (the language pack
#               jupyterlab-language-pack-zh-CN, installed by set-up). Unset, it follows the system
#               locale when that is Chinese (LC_ALL, else LC_MESSAGES, else LANG = zh_CN...), else the
#               lab is in English. The locale is JupyterLab's translation setting
#               (@jupyterlab/translation-extension:plugin), written to a settings folder of the
#               project's own, $LLM_FS_HOME/lab-settings/<locale> (JUPYTERLAB_SETTINGS_DIR), so the
#               user's own JupyterLab settings are left alone.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=env.sh
source "$repo/scripts/env.sh"
lab_lang="${LAB_LANG:-}"
if [ -z "$lab_lang" ]; then
    case "${LC_ALL:-${LC_MESSAGES:-${LANG:-}}}" in zh_CN*) lab_lang=zh_CN ;; esac
fi
if [ -n "$lab_lang" ]; then
    export JUPYTERLAB_SETTINGS_DIR="$LLM_FS_HOME/lab-settings/$lab_lang"
    mkdir -p "$JUPYTERLAB_SETTINGS_DIR/@jupyterlab/translation-extension"
    printf '{\n  "locale": "%s"\n}\n' "$lab_lang" \
        >"$JUPYTERLAB_SETTINGS_DIR/@jupyterlab/translation-extension/plugin.jupyterlab-settings"
fi
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
