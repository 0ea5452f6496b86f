#!/usr/bin/env bash
# Run a command in the project's ROS 2 environment: the venv with the ROS 2 wheels and
# the colcon install of this package. Usage: tools/ros-env.sh COMMAND [ARGS...]
# VENV and INSTALL_BASE choose the venv and the colcon install folder (default .venv and
# install/, ROS 2 Kilted; `make test-jazzy` uses .venv-jazzy and install-jazzy/).
set -eo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$(realpath -m "${VENV:-$root/.venv}")
install_base=$(realpath -m "${INSTALL_BASE:-$root/install}")
[[ -x $venv/bin/python ]] || { echo "error: no venv at $venv (make venv, or make test-jazzy for .venv-jazzy)" >&2; exit 1; }
# shellcheck disable=SC1091
source "$venv/bin/activate"
export AMENT_PREFIX_PATH=$venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}
export CMAKE_PREFIX_PATH=$venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
if [[ -f $install_base/setup.bash ]]; then
  # shellcheck disable=SC1091
  source "$install_base/setup.bash"
fi
# Keep DDS discovery on this machine unless the caller says otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
exec "$@"
