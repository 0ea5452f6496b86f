"""The small networks of the 2D stage and the depth network (PyTorch; the ``train`` extra).

All are fully convolutional, grey in, with batch norm folded into the convolutions at
export. ReLU6 only, so ONNX Runtime fuses every activation into its convolution.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn


def _conv(cin: int, cout: int, k: int = 3, s: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU6(inplace=True))


class _Inverted(nn.Module):
    """MobileNetV2 inverted residual: 1x1 expand, 3x3 depthwise, 1x1 project."""

    def __init__(self, cin: int, cout: int, stride: int = 1, expand: int = 4) -> None:
        super().__init__()
        mid = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.body = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(inplace=True),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid),
            nn.ReLU6(inplace=True),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        y: Tensor = self.body(x)
        return x + y if self.use_res else y


class _Encoder(nn.Module):
    """Features at strides 4, 8, 16 and 32."""

    def __init__(self, widths: tuple[int, int, int, int, int], depth: tuple[int, int, int]
                 ) -> None:
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        self.s4 = nn.Sequential(_conv(1, w0, 3, 2), _conv(w0, w1, 3, 2))
        self.s8 = nn.Sequential(_Inverted(w1, w2, 2),
                                *[_Inverted(w2, w2) for _ in range(depth[0])])
        self.s16 = nn.Sequential(_Inverted(w2, w3, 2),
                                 *[_Inverted(w3, w3) for _ in range(depth[1])])
        self.s32 = nn.Sequential(_Inverted(w3, w4, 2),
                                 *[_Inverted(w4, w4) for _ in range(depth[2])])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        a = self.s4(x)
        b = self.s8(a)
        c = self.s16(b)
        d = self.s32(c)
        return a, b, c, d


class _Decoder(nn.Module):
    """Top-down path back to stride ``out_stride`` (4 or 8) with lateral 1x1 convs."""

    def __init__(self, widths: tuple[int, int, int, int, int], ch: int, out_stride: int
                 ) -> None:
        super().__init__()
        _, w1, w2, w3, w4 = widths
        self.out_stride = out_stride
        self.top = _conv(w4, ch, 1)
        self.lat16 = _conv(w3, ch, 1)
        self.lat8 = _conv(w2, ch, 1)
        self.lat4 = _conv(w1, ch, 1) if out_stride == 4 else None
        self.smooth = _conv(ch, ch, 3)

    def forward(self, feats: tuple[Tensor, Tensor, Tensor, Tensor]) -> Tensor:
        a, b, c, d = feats
        up = nn.functional.interpolate
        x = self.top(d)
        x = up(x, scale_factor=2.0, mode="nearest") + self.lat16(c)
        x = up(x, scale_factor=2.0, mode="nearest") + self.lat8(b)
        if self.lat4 is not None:
            x = up(x, scale_factor=2.0, mode="nearest") + self.lat4(a)
        out: Tensor = self.smooth(x)
        return out


class KeypointNet(nn.Module):
    """Crop (N, 1, S, S), S divisible by 32 -> heatmap logits (N, K, S/4, S/4) and
    offsets (N, 2K, S/4, S/4): x then y of each keypoint, in heatmap cells from the cell
    centre."""

    def __init__(self, keypoints: int = 14,
                 widths: tuple[int, int, int, int, int] = (16, 24, 40, 80, 128),
                 depth: tuple[int, int, int] = (1, 2, 1), ch: int = 48) -> None:
        super().__init__()
        self.keypoints = keypoints
        self.encoder = _Encoder(widths, depth)
        self.decoder = _Decoder(widths, ch, 4)
        self.heatmap = nn.Conv2d(ch, keypoints, 1)
        self.offset = nn.Conv2d(ch, 2 * keypoints, 1)
        nn.init.constant_(self.heatmap.bias, -4.0)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.decoder(self.encoder(x))
        return self.heatmap(f), self.offset(f)


class DetectorNet(nn.Module):
    """Whole frame, longest side ~160 px (N, 1, H, W), H and W divisible by 32 ->
    centre logits (N, 1, H/8, W/8) and box (N, 3, H/8, W/8): centre offset x, y in cells
    and log of the body's size in cells."""

    def __init__(self, widths: tuple[int, int, int, int, int] = (8, 16, 32, 64, 96),
                 depth: tuple[int, int, int] = (1, 1, 1), ch: int = 32) -> None:
        super().__init__()
        self.encoder = _Encoder(widths, depth)
        self.decoder = _Decoder(widths, ch, 8)
        self.centre = nn.Conv2d(ch, 1, 1)
        self.box = nn.Conv2d(ch, 3, 1)
        nn.init.constant_(self.centre.bias, -4.0)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.decoder(self.encoder(x))
        return self.centre(f), self.box(f)


class DepthNet(nn.Module):
    """Mouse crop (N, 1, S, S), S divisible by 32 -> height over the floor (N, 1, S/4,
    S/4), in :data:`~mouse_lifter_ros.core.depth.DEPTH_UNIT` metres, and mouse logits
    (N, 1, S/4, S/4)."""

    def __init__(self, widths: tuple[int, int, int, int, int] = (16, 24, 40, 80, 128),
                 depth: tuple[int, int, int] = (1, 2, 1), ch: int = 48) -> None:
        super().__init__()
        self.encoder = _Encoder(widths, depth)
        self.decoder = _Decoder(widths, ch, 4)
        self.height = nn.Conv2d(ch, 1, 1)
        self.mask = nn.Conv2d(ch, 1, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.decoder(self.encoder(x))
        return self.height(f), self.mask(f)


class VerifierNet(nn.Module):
    """Is this crop a mouse? Grey (N, 1, 64, 64) in, one logit (N, 1, 1, 1) out: strided
    convolutions, then the mean over the image and a 1x1 convolution (125k parameters)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(_conv(1, 16, 3, 2), _conv(16, 32, 3, 2), _conv(32, 32),
                                      _conv(32, 64, 3, 2), _conv(64, 64), _conv(64, 96, 3, 2))
        self.head = nn.Conv2d(96, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        y: Tensor = self.head(self.features(x).mean(dim=(2, 3), keepdim=True))
        return y


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def export_onnx(net: nn.Module, path: str, shape: tuple[int, int, int, int], *,
                output_names: tuple[str, ...], dynamic_hw: bool = False,
                dynamic_batch: bool = False) -> None:
    """Export ``net`` in eval mode to ONNX (opset 17), input name ``image``; with
    ``dynamic_batch`` the batch size of the input and outputs is free (a fully
    convolutional net: the verifier judges all its crops in one run)."""
    net = net.eval()
    dummy = torch.zeros(shape)
    axes: dict[str, dict[int, str]] = {}
    if dynamic_hw:
        axes["image"] = {2: "height", 3: "width"}
    if dynamic_batch:
        for name in ("image", *output_names):
            axes.setdefault(name, {})[0] = "batch"
    torch.onnx.export(net, (dummy,), path, input_names=["image"],
                      output_names=list(output_names), opset_version=17,
                      dynamic_axes=axes or None, dynamo=False)


def load_start_weights(net: nn.Module, path: str | os.PathLike[str]) -> bool:
    """Load the weights a training run starts from into ``net``: an earlier run's state
    dict (``.pt``) or a model's ONNX file (``.onnx``, :func:`load_onnx_weights`).
    Returns True for ONNX: its batch norms carry the folded weights, so they must stay in
    eval mode while training (``fit_network(..., frozen_bn=True)``)."""
    if Path(path).suffix == ".onnx":
        load_onnx_weights(net, str(path))
        return True
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return False


def load_onnx_weights(net: nn.Module, path: str, *, extra_keypoints: int = 0) -> None:
    """Load the weights of an ONNX file exported by :func:`export_onnx` from a network
    of ``net``'s class back into ``net`` (eval mode), so that training can continue
    from a shipped model of which only the ONNX file exists.

    The export folded each batch norm into its convolution; here every convolution takes
    the folded weights and its batch norm becomes the identity (running mean 0, variance
    1 - eps, scale 1) carrying the folded bias, so ``net`` computes what the file does.
    Keep the batch norms in eval mode while training (their statistics are gone).
    Convolutions are matched in the order the graph runs them, each checked by shape.
    ``extra_keypoints``: the file's last two convolutions (heatmap, offset) have that
    many keypoints fewer than ``net``; the extra rows of ``net`` keep their values.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type == "Conv"]
    convs: list[nn.Conv2d] = []
    hooks = [m.register_forward_hook(lambda mod, _i, _o: convs.append(mod))
             for m in net.modules() if isinstance(m, nn.Conv2d)]
    net.eval()
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    with torch.no_grad():
        net(torch.zeros(shape))
    for h in hooks:
        h.remove()
    if len(convs) != len(nodes):
        raise ValueError(f"{path}: {len(nodes)} convolutions, the network has {len(convs)}")
    follows = {id(seq[i]): seq[i + 1] for seq in net.modules()
               if isinstance(seq, nn.Sequential) for i in range(len(seq) - 1)}
    with torch.no_grad():
        for i, (conv, node) in enumerate(zip(convs, nodes, strict=True)):
            w = torch.from_numpy(init[node.input[1]].copy())
            b = torch.from_numpy(init[node.input[2]].copy()) if len(node.input) > 2 else \
                torch.zeros(w.shape[0])
            rows = w.shape[0]
            head = i >= len(convs) - 2 and extra_keypoints
            if (conv.weight[:rows].shape if head else conv.weight.shape) != w.shape:
                raise ValueError(f"{path}: convolution {node.name} has weights {tuple(w.shape)}, "
                                 f"the network's {tuple(conv.weight.shape)}")
            conv.weight[:rows] = w
            bn = follows.get(id(conv))
            if conv.bias is not None:
                conv.bias[:rows] = b
            elif isinstance(bn, nn.BatchNorm2d):
                bn.weight.fill_(1.0)
                bn.bias.copy_(b)
                assert bn.running_mean is not None and bn.running_var is not None
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
            elif b.abs().max() > 0:
                raise ValueError(f"{path}: convolution {node.name} has a bias the network "
                                 "has nowhere to put")
