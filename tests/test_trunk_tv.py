"""tv:<name> trunks: spec from the meta device, the pool tap, random and state-dict weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from mer_cache.errors import TrunkError, WeightsError
from mer_cache.trunks import create_trunk, get_spec
from mer_cache.trunks.tv import tv_spec


def _frames(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 224, 224), dtype=torch.uint8, generator=g)


def test_spec_of_a_resnet() -> None:
    spec = get_spec("tv:resnet18")
    assert spec.layers == {"pool": 512, "logits": 1000}
    assert spec.default_layer == "pool"
    assert spec.cam_layers == ("layer1", "layer2", "layer3", "layer4")
    assert spec.preprocessing.input_size == (224, 224) and spec.preprocessing.channels == "rgb"
    assert spec.preprocessing.mean[0] == pytest.approx(0.485 * 255)


def test_spec_without_layer1_to_4_uses_the_last_feature_blocks() -> None:
    spec = tv_spec("tv:mobilenet_v3_small")
    assert spec.layers == {"pool": 1024, "logits": 1000}  # input of classifier.3
    assert spec.cam_layers == ("features.9", "features.10", "features.11", "features.12")


def test_unknown_model_lists_close_matches() -> None:
    with pytest.raises(TrunkError, match="tv:resnet18"):
        get_spec("tv:resnet19")


def test_pool_is_the_classifier_input() -> None:
    trunk = create_trunk("tv:resnet18", weights="random")
    frames = _frames(2)
    with torch.no_grad():
        pool = trunk(frames)
        trunk.layer = "logits"
        logits = trunk(frames)
        torch.testing.assert_close(trunk.net.model.fc(pool), logits)
    assert pool.shape == (2, 512) and logits.shape == (2, 1000)
    assert list(trunk.cam_modules()) == ["layer1", "layer2", "layer3", "layer4"]


def test_model_without_linear_pools_its_last_conv_input() -> None:
    trunk = create_trunk("tv:squeezenet1_1", weights="random")
    assert trunk.dim == 512
    with torch.no_grad():
        assert trunk(_frames(1)).shape == (1, 512)


def test_weights_must_be_chosen() -> None:
    with pytest.raises(WeightsError, match="--weights random"):
        create_trunk("tv:resnet18")


def test_random_weights_are_seeded() -> None:
    a, b = (create_trunk("tv:mobilenet_v3_small", weights="random") for _ in range(2))
    with torch.no_grad():
        torch.testing.assert_close(a(_frames(1)), b(_frames(1)))
    assert a.weights_format == "random"


def test_state_dict_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(5)
    model = torchvision.models.get_model("mobilenet_v3_small").eval()
    path = tmp_path / "mnv3.pt"
    torch.save(model.state_dict(), path)
    trunk = create_trunk("tv:mobilenet_v3_small", weights=path, layer="logits")
    frames = _frames(2, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(trunk(frames), model(trunk.normalize(frames)))
    assert trunk.weights_format == "state-dict" and len(trunk.weights_sha256) == 64


@pytest.mark.parametrize(("edit", "named"), [
    (lambda sd: sd.pop("classifier.3.bias"), "missing keys: classifier.3.bias"),
    (lambda sd: sd.__setitem__("extra.weight", torch.zeros(1)), "unexpected keys: extra.weight"),
    (lambda sd: sd.__setitem__("classifier.3.weight", torch.zeros(7, 1024)),
     r"mis-shaped keys: classifier.3.weight \(file \(7, 1024\)"),
])
def test_state_dict_keys_are_checked(tmp_path: Path, edit, named: str) -> None:
    state = torchvision.models.get_model("mobilenet_v3_small").state_dict()
    edit(state)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(WeightsError, match=named):
        create_trunk("tv:mobilenet_v3_small", weights=path)


def test_a_pickled_model_object_is_not_executed(tmp_path: Path) -> None:
    path = tmp_path / "whole_model.pt"
    torch.save(torch.nn.Linear(2, 2), path)  # a module object, not a state dict
    with pytest.raises(WeightsError, match="weights_only"):
        create_trunk("tv:mobilenet_v3_small", weights=path)
