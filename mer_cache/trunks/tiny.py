"""``tiny-cnn``: a small, seeded, untrained CNN for tests, smoke runs and examples.

It is a real module with the same interface as the big trunks (tappable layers, spatial
layers for Grad-CAM), just small enough to run hundreds of frames a second on one core.
Its weights are a deterministic function of the seed 0, so features are reproducible.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from mer_cache.errors import WeightsError
from mer_cache.trunks.registry import BuiltNet, register_trunk
from mer_cache.trunks.spec import Preprocessing, TrunkSpec


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer1 = _block(3, 8)  # (B, 8, 32, 32)
        self.layer2 = _block(8, 16)  # (B, 16, 16, 16)
        self.layer3 = _block(16, 32)  # (B, 32, 8, 8)
        self.layer4 = _block(32, 32)  # (B, 32, 4, 4)
        self.fc = nn.Linear(32, 4)

    def forward_features(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        pooled = x.mean(dim=(2, 3))  # (B, 32)
        return pooled if layer == "pool" else self.fc(pooled)

    def cam_modules(self) -> dict[str, nn.Module]:
        return {f"layer{i}": getattr(self, f"layer{i}") for i in range(1, 5)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x, "logits")


SPEC = TrunkSpec(
    name="tiny-cnn",
    description="Small seeded random CNN for tests and smoke runs (64x64 RGB, 32-d).",
    preprocessing=Preprocessing((64, 64), "rgb", (127.5,) * 3, (127.5,) * 3),
    layers={"pool": 32, "logits": 4},
    default_layer="pool",
    cam_layers=("layer1", "layer2", "layer3", "layer4"),
    weight_formats=("random", "checkpoint"),
)


def build(weights: Path | str | None) -> BuiltNet:
    gen_state = torch.random.get_rng_state()  # seed the init without disturbing the caller's RNG
    torch.manual_seed(0)
    net = TinyCNN()
    torch.random.set_rng_state(gen_state)
    if weights in (None, "random"):
        digest = hashlib.sha256(b"tiny-cnn-seed-0").hexdigest()
        return BuiltNet(net, SPEC.preprocessing, digest, "random")
    path = Path(weights)
    if not path.is_file():
        raise WeightsError(f"Weight file {path} does not exist. Pass a checkpoint or 'random'.")
    from mer_cache.trunks.checkpoints import load_checkpoint_into

    digest = load_checkpoint_into(net, path)
    return BuiltNet(net, SPEC.preprocessing, digest, "checkpoint", path)


register_trunk(SPEC, build)
