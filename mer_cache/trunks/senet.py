"""``vggface2-senet50``: the VGGFace2 SE-ResNet-50 (``senet50_ft_weight.pkl``).

Same network as :mod:`mer_cache.trunks.resnet_caffe` (Caffe ResNet-50 v1: stride on the
first 1x1, ceil-mode max-pool, no conv bias) plus a squeeze-and-excitation step in every
bottleneck: ``conv4`` (C -> C/16) and ``conv5`` (C/16 -> C), both with bias, and
``out = sigmoid(conv5(relu(conv4(gap(out))))) * out + residual``.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from mer_cache.errors import WeightsError
from mer_cache.trunks.registry import register_trunk
from mer_cache.trunks.resnet_caffe import N_IDENTITIES, Bottleneck, CaffeResNet50
from mer_cache.trunks.spec import TrunkSpec, WeightFile
from mer_cache.trunks.vggface2 import BGR_PREPROCESSING, HOW_TO_GET, build_vggface2

SE_REDUCTION = 16  # SENet's squeeze ratio


class SEBottleneck(Bottleneck):
    """Caffe bottleneck with squeeze-and-excitation before the residual add."""

    def __init__(self, inplanes: int, planes: int, *, stride: int = 1,
                 downsample: nn.Module | None = None, bn_eps: float = 1e-5) -> None:
        super().__init__(inplanes, planes, stride=stride, downsample=downsample,
                         bn_eps=bn_eps)
        channels = planes * self.expansion
        self.conv4 = nn.Conv2d(channels, channels // SE_REDUCTION, 1, bias=True)
        self.conv5 = nn.Conv2d(channels // SE_REDUCTION, channels, 1, bias=True)

    def excite(self, out: torch.Tensor) -> torch.Tensor:
        scale = out.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        scale = torch.sigmoid(self.conv5(self.relu(self.conv4(scale))))  # (B, C, 1, 1)
        return out * scale


def make_senet50(variant: str, with_classifier: bool) -> CaffeResNet50:
    if variant != "caffe":
        raise WeightsError(f"vggface2-senet50 has no '{variant}' variant.")
    return CaffeResNet50(block=SEBottleneck, variant="caffe", with_classifier=with_classifier)


WEIGHT_FILES = (
    WeightFile("senet50_ft_weight.pkl", "pkl", None,
               "VGGFace2 SE-ResNet-50 pre-trained on MS-Celeb-1M and fine-tuned on "
               "VGGFace2, as a pickle of numpy arrays (the widely used PyTorch "
               "conversion). " + HOW_TO_GET),
)

SPEC = TrunkSpec(
    name="vggface2-senet50",
    description="VGGFace2 SE-ResNet-50 (Caffe-style v1 + SE), 224x224 BGR, 2048-d pool5.",
    preprocessing=BGR_PREPROCESSING,
    layers={"pool5": 2048, "layer3": 1024, "logits": N_IDENTITIES},
    default_layer="pool5",
    cam_layers=("layer1", "layer2", "layer3", "layer4"),
    weight_files=WEIGHT_FILES,
    weight_formats=("pkl", "pth-caffe", "state-dict", "checkpoint", "random"),
)

build = partial(build_vggface2, spec=SPEC, make_net=make_senet50,
                default_file="senet50_ft_weight.pkl", keras_variant=False)
build.__doc__ = "Build ``vggface2-senet50`` from a weight file, 'random' or the default."

register_trunk(SPEC, build)
