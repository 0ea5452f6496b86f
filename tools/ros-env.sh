#!/usr/bin/env bash
# Run a command in the project's ROS 2 environment: the venv with the ROS 2 wheels and
# the colcon install of this package. Usage: tools/ros-env.sh COMMAND [ARGS...]
set -eo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${VENV:-$root/.venv}
# shellcheck disable=SC1091
source "$venv/bin/activate"
export AMENT_PREFIX_PATH=$venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}
export CMAKE_PREFIX_PATH=$venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
if [[ -f $root/install/setup.bash ]]; then
  # shellcheck disable=SC1091
  source "$root/install/setup.bash"
fi
# Keep DDS discovery on this machine unless the caller says otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
export RMW_IMPLEMENTATION=${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}
exec "$@"
