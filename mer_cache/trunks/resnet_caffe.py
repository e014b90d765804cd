"""``vggface2-resnet50``: the Caffe-style ResNet-50 of VGGFace2, and its Keras variant.

The VGGFace2 weights were trained in Caffe with ResNet-50 v1, which differs from
torchvision's v1.5 in ways that load silently and give wrong features:

- the bottleneck's stride 2 sits on the first 1x1 conv (``conv1``), not on the 3x3;
- the stem max-pool is ``MaxPool2d(3, 2, padding=0, ceil_mode=True)`` (112 -> 56);
- no conv has a bias; BatchNorm eps 1e-5; the head is ``AvgPool2d(7)`` -> 2048.

The Keras conversion (rcmalli ``keras_vggface``) is a slightly different network: the 7x7/2
stem conv is padded 'same' the TensorFlow way (asymmetric, 2 before / 3 after at 224),
the max-pool is 'valid' (112 -> 55) and BatchNorm eps is Keras' 1e-3. ``variant="keras"``
builds that network, so features from the ``.h5`` match Keras.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from mer_cache.errors import TrunkError
from mer_cache.trunks.registry import register_trunk
from mer_cache.trunks.spec import TrunkSpec, WeightFile
from mer_cache.trunks.vggface2 import BGR_PREPROCESSING, HOW_TO_GET, build_vggface2

Variant = Literal["caffe", "keras"]
BLOCKS_PER_LAYER = (3, 4, 6, 3)
N_IDENTITIES = 8631  # VGGFace2 training identities


class TFSamePad2d(nn.Module):
    """Zero padding of TensorFlow's 'same' convolution: the odd pixel goes after.

    The total padding depends on the input size, so it is computed per call.
    """

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def _pads(self, size: int) -> tuple[int, int]:
        out = math.ceil(size / self.stride)
        total = max((out - 1) * self.stride + self.kernel_size - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self._pads(x.shape[-2])
        left, right = self._pads(x.shape[-1])
        return F.pad(x, (left, right, top, bottom))


class Bottleneck(nn.Module):
    """Caffe ResNet v1 bottleneck: the stride is on the first 1x1 conv."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, *, stride: int = 1,
                 downsample: nn.Module | None = None, bn_eps: float = 1e-5) -> None:
        super().__init__()
        width_out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, eps=bn_eps)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=bn_eps)
        self.conv3 = nn.Conv2d(planes, width_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width_out, eps=bn_eps)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def excite(self, out: torch.Tensor) -> torch.Tensor:
        """Hook for channel re-weighting before the residual add (identity here)."""
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(self.excite(out) + residual)


class CaffeResNet50(nn.Module):
    """ResNet-50 v1 as trained by VGGFace2, with tappable ``pool5``/``layer3``/``logits``.

    Parameters
    ----------
    block : type[Bottleneck]
        Bottleneck class (:class:`~mer_cache.trunks.senet.SEBottleneck` for SE-ResNet-50).
    variant : {"caffe", "keras"}
        Architecture of the Caffe/PyTorch releases or of the Keras release (see module doc).
    with_classifier : bool
        False for weights without the 8631-way classifier (Keras "notop"); ``logits`` is
        then unavailable.
    """

    def __init__(self, *, block: type[Bottleneck] = Bottleneck, variant: Variant = "caffe",
                 with_classifier: bool = True) -> None:
        super().__init__()
        if variant not in ("caffe", "keras"):
            raise TrunkError(f"Unknown ResNet-50 variant '{variant}': use 'caffe' or 'keras'.")
        self.variant = variant
        keras = variant == "keras"
        bn_eps = 1e-3 if keras else 1e-5  # Keras BatchNormalization default vs Caffe
        # Keras 'same' 7x7/2 pads (2, 3) at 224; Caffe pads 3 on each side.
        self.stem_pad = TFSamePad2d(7, 2) if keras else nn.Identity()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=0 if keras else 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=bn_eps)
        self.relu = nn.ReLU(inplace=True)
        # Caffe rounds the pooled size up (112 -> 56); Keras 'valid' rounds down (-> 55).
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=0, ceil_mode=not keras)
        inplanes = 64
        for i, (planes, n_blocks) in enumerate(zip((64, 128, 256, 512), BLOCKS_PER_LAYER)):
            stride = 1 if i == 0 else 2
            downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion, eps=bn_eps),
            )
            blocks = [block(inplanes, planes, stride=stride, downsample=downsample,
                            bn_eps=bn_eps)]
            inplanes = planes * block.expansion
            blocks += [block(inplanes, planes, bn_eps=bn_eps) for _ in range(1, n_blocks)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(inplanes, N_IDENTITIES) if with_classifier else None
        self._init_random()

    def _init_random(self) -> None:
        # He init as torchvision does; only matters for --weights random.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(self.stem_pad(x))))  # (B, 64, 112, 112)
        return self.maxpool(x)  # (B, 64, 56, 56) caffe / (B, 64, 55, 55) keras

    def forward_features(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        """Normalized input ``(B, 3, 224, 224)`` -> embedding ``(B, D)`` of ``layer``.

        ``layer3`` is the global average of the 1024-channel 14x14 map; ``pool5`` the
        global average of layer4's 7x7 map (== ``AvgPool2d(7)`` at 224x224); ``logits`` the
        8631 identity scores before softmax.
        """
        if layer not in ("pool5", "layer3", "logits"):
            raise TrunkError(f"{type(self).__name__} has no layer '{layer}': "
                             "use pool5, layer3 or logits.")
        if layer == "logits" and self.fc is None:
            raise TrunkError(
                "These weights have no classifier (a Keras 'notop' file), so layer "
                "'logits' is unavailable; tap 'pool5' or 'layer3', or pass the file with "
                "the classifier."
            )
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))  # (B, 1024, 14, 14)
        if layer == "layer3":
            return x.mean(dim=(2, 3))  # (B, 1024)
        pooled = self.layer4(x).mean(dim=(2, 3))  # (B, 2048)
        return pooled if layer == "pool5" else self.fc(pooled)  # (B, 2048) | (B, 8631)

    def cam_modules(self) -> dict[str, nn.Module]:
        return {f"layer{i}": getattr(self, f"layer{i}") for i in range(1, 5)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x, "logits" if self.fc is not None else "pool5")


WEIGHT_FILES = (
    WeightFile("resnet50_ft_weight.pkl", "pkl", None,
               "VGGFace2 ResNet-50 pre-trained on MS-Celeb-1M and fine-tuned on VGGFace2, "
               "as a pickle of numpy arrays (the widely used PyTorch conversion). "
               + HOW_TO_GET),
    WeightFile("resnet50_scratch_weight.pkl", "pkl", None,
               "VGGFace2 ResNet-50 trained from scratch on VGGFace2, same pickle format. "
               + HOW_TO_GET),
    WeightFile("resnet50_ft_dag.pth", "pth-caffe", None,
               "The official VGGFace2 PyTorch release of resnet50_ft (Caffe layer names, "
               "RGB input). " + HOW_TO_GET),
    WeightFile("rcmalli_vggface_tf_resnet50.h5", "keras-h5", None,
               "The Keras conversion of resnet50_ft by rcmalli/keras-vggface (with the "
               "classifier). " + HOW_TO_GET),
    WeightFile("rcmalli_vggface_tf_notop_resnet50.h5", "keras-h5", None,
               "The same Keras conversion without the classifier (no 'logits' layer). "
               + HOW_TO_GET),
)

SPEC = TrunkSpec(
    name="vggface2-resnet50",
    description="VGGFace2 ResNet-50 (Caffe-style v1), 224x224 BGR, 2048-d pool5.",
    preprocessing=BGR_PREPROCESSING,
    layers={"pool5": 2048, "layer3": 1024, "logits": N_IDENTITIES},
    default_layer="pool5",
    cam_layers=("layer1", "layer2", "layer3", "layer4"),
    weight_files=WEIGHT_FILES,
    weight_formats=("pkl", "pth-caffe", "keras-h5", "state-dict", "checkpoint", "random"),
)


def make_resnet50(variant: Variant, with_classifier: bool) -> CaffeResNet50:
    return CaffeResNet50(variant=variant, with_classifier=with_classifier)


build = partial(build_vggface2, spec=SPEC, make_net=make_resnet50,
                default_file="resnet50_ft_weight.pkl", keras_variant=True)
build.__doc__ = "Build ``vggface2-resnet50`` from a weight file, 'random' or the default."

register_trunk(SPEC, build)
