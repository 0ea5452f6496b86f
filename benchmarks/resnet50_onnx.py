"""A DeepLabCut-like ResNet-50 keypoint network as ONNX, built with onnx.helper (no torch).

    tools/ros-env.sh python benchmarks/resnet50_onnx.py OUT.onnx [--width 640 --height 480]

The layout is DeepLabCut's single-animal ResNet-50 (``pose_cfg``: ``output_stride: 16``,
``deconvolutionstride: 2``): torchvision-style bottleneck stages 3-4-6-3 (widths 64 to
512, four times that out, stride on the 3x3 conv), the last stage dilated (rate 2)
instead of strided, so the features are at stride 16, then two 3x3 transposed
convolutions of stride 2 over the 2048 features: ``heatmaps`` (K score maps) and
``locref`` (2K location refinements, x and y per keypoint) at stride 8. Batch norm is
folded into the convolutions' biases, as an export for inference has it. The weights
are random (He initialisation, residual branches scaled down so that the activations
stay finite, heads scaled to outputs of order 1): the network costs what a trained one
costs but predicts nothing.

Input ``image`` (1, 3, height, width) float32 RGB; outputs ``heatmaps`` (1, K, h, w) and
``locref`` (1, 2K, h, w) with h, w = height / 8, width / 8 (both multiples of 16).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: Bottleneck blocks per stage and their widths (ResNet-50).
STAGES = ((3, 64), (4, 128), (6, 256), (3, 512))
OPSET = 17


class _Graph:
    """Collects nodes and initialisers with unique names."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def name(self, what: str) -> str:
        self.n += 1
        return f"{what}_{self.n}"

    def weight(self, shape: tuple[int, ...], std: float) -> str:
        name = self.name("w")
        value = self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def bias(self, n: int, value: float = 0.01) -> str:
        name = self.name("b")
        self.inits.append(numpy_helper.from_array(np.full(n, value, np.float32), name))
        return name

    def conv(self, x: str, cin: int, cout: int, k: int, *, stride: int = 1,
             dilation: int = 1, relu: bool = True, gain: float = 1.0,
             out: str | None = None) -> str:
        pad = dilation * (k - 1) // 2
        w = self.weight((cout, cin, k, k), gain * np.sqrt(2.0 / (cin * k * k)))
        y = out or self.name("conv")
        self.nodes.append(helper.make_node(
            "Conv", [x, w, self.bias(cout)], [y], kernel_shape=[k, k], strides=[stride] * 2,
            dilations=[dilation] * 2, pads=[pad] * 4))
        return self.relu(y) if relu else y

    def relu(self, x: str) -> str:
        y = self.name("relu")
        self.nodes.append(helper.make_node("Relu", [x], [y]))
        return y

    def deconv(self, x: str, cin: int, cout: int, out: str, gain: float = 1.0) -> str:
        """3x3 transposed convolution, stride 2: exactly twice the size."""
        w = self.weight((cin, cout, 3, 3), gain * np.sqrt(1.0 / (cin * 9)))
        self.nodes.append(helper.make_node(
            "ConvTranspose", [x, w, self.bias(cout, 0.0)], [out], kernel_shape=[3, 3],
            strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]))
        return out


def _bottleneck(g: _Graph, x: str, cin: int, width: int, stride: int, dilation: int) -> str:
    cout = 4 * width
    y = g.conv(x, cin, width, 1)
    y = g.conv(y, width, width, 3, stride=stride, dilation=dilation)
    y = g.conv(y, width, cout, 1, relu=False, gain=0.2)
    short = x if (cin == cout and stride == 1) else g.conv(x, cin, cout, 1, stride=stride,
                                                           relu=False)
    s = g.name("add")
    g.nodes.append(helper.make_node("Add", [y, short], [s]))
    return g.relu(s)


def build_resnet50_keypoints(path: str | Path, *, width: int = 640, height: int = 480,
                             keypoints: int = 14, seed: int = 0) -> Path:
    """Write the network (about 95 MB) to ``path``; return the path. ``width`` and
    ``height`` (px) must be multiples of 16; the outputs are 1/8 of them."""
    if width % 16 or height % 16:
        raise ValueError(f"{width}x{height}: width and height must be multiples of 16")
    g = _Graph(seed)
    x = g.conv("image", 3, 64, 7, stride=2)
    pooled = g.name("pool")
    g.nodes.append(helper.make_node("MaxPool", [x], [pooled], kernel_shape=[3, 3],
                                    strides=[2, 2], pads=[1, 1, 1, 1]))
    x, cin = pooled, 64
    for stage, (blocks, w) in enumerate(STAGES):
        for b in range(blocks):
            last = stage == len(STAGES) - 1
            stride = 2 if b == 0 and stage in (1, 2) else 1  # stage 4: dilated, not strided
            x = _bottleneck(g, x, cin, w, stride, 2 if last and b > 0 else 1)
            cin = 4 * w
    # the features' scale is ~100 with these weights: heads scaled to outputs of ~1
    g.deconv(x, cin, keypoints, "heatmaps", gain=0.01)
    g.deconv(x, cin, 2 * keypoints, "locref", gain=0.01)
    h8, w8 = height // 8, width // 8
    outputs = [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT,
                                             [1, keypoints, h8, w8]),
               helper.make_tensor_value_info("locref", TensorProto.FLOAT,
                                             [1, 2 * keypoints, h8, w8])]
    graph = helper.make_graph(
        g.nodes, "resnet50_keypoints",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, height, width])],
        outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="mouse_lifter_ros benchmarks")
    onnx.checker.check_model(model)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    onnx.save(model, tmp)
    tmp.replace(p)
    return p


def parameter_count(path: str | Path) -> int:
    """Number of weights in an ONNX file's initialisers."""
    model = onnx.load(str(path))
    return int(sum(np.prod(t.dims) for t in model.graph.initializer))


def main(argv: Any = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--keypoints", type=int, default=14)
    ns = ap.parse_args(argv)
    p = build_resnet50_keypoints(ns.out, width=ns.width, height=ns.height,
                                 keypoints=ns.keypoints)
    print(f"wrote {p}: {parameter_count(p) / 1e6:.1f} M parameters")


if __name__ == "__main__":
    main()
