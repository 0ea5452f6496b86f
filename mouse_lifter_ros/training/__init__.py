"""Training of the shipped networks. Never imported by the inference path: the nodes and
the core run the exported ONNX files with ONNX Runtime and the behaviour model's .npz.

The 2D keypoint and depth networks (``data2d``, ``train2d``, ``datadepth``,
``traindepth``, ``nets``) need the ``train`` extra (PyTorch); the behaviour classifier's
(``databehavior``, ``trainbehavior``) is numpy only. This file imports nothing, so the
package imports without PyTorch.
"""
