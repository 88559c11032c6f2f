#!/usr/bin/env bash
# Set up a fresh Debian machine for tinycc: the cross compiler, the emulator, the Python package.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
if ! command -v arm-none-eabi-gcc >/dev/null || ! command -v qemu-system-arm >/dev/null || ! command -v clang >/dev/null || ! command -v cmake >/dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        gcc gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi qemu-system-arm clang cmake >/dev/null
fi
python3 -m pip install -q -e '.[test]'
