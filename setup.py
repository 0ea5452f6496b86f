"""pip-installable ROS-free core and the `mouse-lifter` command line.

The ROS package (messages, nodes, launch files) is built by colcon from package.xml and
CMakeLists.txt; this file serves `pip install .` on machines without ROS, where the
core (images, calibration, video, rosbag2 I/O, graph description) and the command line
work on their own. Training needs the `train` extra (PyTorch).
"""

from setuptools import find_packages, setup

setup(
    name="mouse-lifter-ros",
    version="0.1.0",
    description="Real-time 3D mouse pose from one camera: the ROS-free core and command line",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["mouse_lifter_ros", "mouse_lifter_ros.*"]),
    # Trained models (not Python packages): mouse_lifter_ros/models/<name>/ files + cards.
    package_data={"mouse_lifter_ros": ["models/*/*.npz", "models/*/*.md", "models/*/*.onnx",
                                       "models/*/*.yaml"]},
    install_requires=[
        "bokeh>=3.1",
        "dask>=2024.8",
        "dask-jobqueue>=0.8",
        "distributed>=2024.8",
        "matplotlib>=3.7",
        "ndx-pose>=0.4",
        "numpy>=1.26",
        "onnxruntime>=1.17",
        "opencv-python-headless>=4.8",
        "pandas>=2.1",
        "pyarrow>=14",
        "pynwb>=3.1",
        "PyYAML>=6.0",
        "rosbags>=0.10",
        "scipy>=1.11",
        "tables>=3.9",
        "tqdm>=4.60",
    ],
    extras_require={
        "train": ["torch==2.13.0", "onnx>=1.15"],
        "test": ["pytest>=8", "pytest-timeout>=2", "nwbinspector>=0.6"],
    },
    entry_points={"console_scripts": ["mouse-lifter=mouse_lifter_ros.cli:main"]},
)
