#!/usr/bin/env bash
# Make the ROS 2 wheels' CMake exports usable on this machine (see ../shared/ros2-from-wheels.md):
# the message wheels name include folders of the machine they were built on, which CMake
# requires to exist. Point them at this interpreter's headers, and copy the venv's numpy
# headers (a link into a venv inside the source tree makes CMake refuse the export).
# Usage: tools/wheel-ros-fixups.sh VENV_PYTHON   (either venv: .venv, Kilted, or .venv-jazzy;
# the Jazzy wheels name the same folders, and both locks pin the same numpy)
set -euo pipefail
py=${1:?usage: $0 VENV_PYTHON}
root=/opt/python/cp311-cp311
py_inc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
np_inc=$("$py" -c 'import numpy; print(numpy.get_include())')
want_py=$root/include/python3.11
want_np=$root/lib/python3.11/site-packages/numpy/_core/include
[[ "$(readlink -f "$want_py" 2>/dev/null)" == "$(readlink -f "$py_inc")" ]] &&
  [[ ! -L "$want_np" ]] && diff -rq "$want_np" "$np_inc" >/dev/null 2>&1 && exit 0
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "error: need root (or sudo) to create $root links for the ROS 2 wheels' CMake exports" >&2; exit 1; }
  sudo=sudo
fi
$sudo mkdir -p "$root/include" "$(dirname "$want_np")"
$sudo ln -sfn "$py_inc" "$want_py"
$sudo rm -rf "$want_np"
$sudo cp -r "$np_inc" "$want_np"
echo "linked $want_py -> $py_inc; copied $np_inc to $want_np"
