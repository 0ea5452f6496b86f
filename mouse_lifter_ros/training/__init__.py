"""Training of the shipped networks (the ``train`` extra: PyTorch). Never imported by the
inference path: the nodes and the core run the exported ONNX files with ONNX Runtime."""
