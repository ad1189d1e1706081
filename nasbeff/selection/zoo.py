"""A zoo of small image backbones for model selection (paper, "pre-trained model selection"),
built from torchvision's model definitions where they exist, resized for 32 x 32 inputs.

Every backbone is a :class:`ZooNet`: ``body`` maps images to pooled features (N, ``feature_dim``),
``head`` is the classifier of the source task; ``forward(x) = head(body(x).flatten(1))``. The
frozen NCP replaces ``head`` (``attach_probe(net, k, net.feature_dim, head="head")``), so
fine-tuning trains the whole body under the probe (paper, Methods).

32 x 32 stems: the first convolution runs at stride 1 (DenseNet, ResNet: a 3 x 3 convolution)
and stem max-pools are dropped (DenseNet, ShuffleNetV2); ConvNeXt's 4 x 4 / 4 patchify stem
becomes 2 x 2 / 2. Widths keep each backbone within minutes of CPU pre-training on 32 x 32
images (``experiments/model_selection/PLAN.md`` has the measured seconds per epoch).

BatchNorm momentum is 0.1 (PyTorch's default) in every zoo backbone: torchvision's MNASNet (3e-4)
and MobileNetV3 (0.01) values suit hundreds of thousands of ImageNet steps; after the few hundred
steps of a zoo pre-training their running statistics would still be near their initial values,
and every eval-mode accuracy (source test, target validation) would be meaningless.

``tv:<name>`` builds torchvision's unchanged ImageNet definition (e.g. ``tv:resnet50``) so that a
user's own ImageNet weights load with :func:`load_weights` (the paper's exact setting). Input-size
policy: a backbone sees images at its ``input_size`` (32 for the zoo, 224 for ``tv:`` models, 299
for ``tv:inception_v3``); ``nasbeff select`` resizes the 32 x 32 target images bilinearly to it on
the fly, so pre-trained filters see objects at the scale they were trained at.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torchvision.models import (ConvNeXt, DenseNet, EfficientNet, MNASNet, MobileNetV2, MobileNetV3, RegNet,
                                ShuffleNetV2, SqueezeNet, VGG)
from torchvision.models.convnext import CNBlockConfig
from torchvision.models.efficientnet import MBConvConfig
from torchvision.models.mobilenetv3 import InvertedResidualConfig
from torchvision.models.regnet import BlockParams
from torchvision.models.resnet import BasicBlock, conv1x1
from torchvision.models.vgg import make_layers

from ..data.names import NORMALIZATION

CIFAR_STATS = NORMALIZATION["cifar10"]
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_HEAD_ATTRS = ("fc", "classifier", "heads", "head")


class _SpatialHead(nn.Sequential):
    """A classifier written for (N, C, 1, 1) maps (SqueezeNet's 1 x 1 convolution, ConvNeXt's
    LayerNorm2d) applied to pooled (N, C) features; parameter names stay the original ones."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x[:, :, None, None]).flatten(1)


class ZooNet(nn.Module):
    """``body`` (images -> pooled features, ``feature_dim`` wide) + ``head`` (source classifier)."""

    def __init__(self, body: nn.Module, head: nn.Module, feature_dim: int, name: str = "") -> None:
        super().__init__()
        self.body, self.head, self.feature_dim, self.name = body, head, int(feature_dim), name

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


# ---------------------------------------------------------------------------------------------
# Definitions torchvision lacks: the CIFAR ResNet layout on torchvision's BasicBlock, PreAct ResNet
# ---------------------------------------------------------------------------------------------
class CifarResNet(nn.Module):
    """He et al. (2016) CIFAR layout on torchvision's ``BasicBlock``: 3 x 3 stem at stride 1 (no
    max-pool), stages of ``blocks[i]`` blocks with widths ``width * 2^i`` (stride 2 from the second
    stage on), global average pooling, ``fc``."""

    def __init__(self, blocks: tuple[int, ...], width: int, num_classes: int,
                 block: type[nn.Module] = BasicBlock) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        layers, planes = [], width
        for i, n in enumerate(blocks):
            out, stride = width * 2 ** i, 1 if i == 0 else 2
            down = None
            if stride != 1 or planes != out:
                down = nn.Sequential(conv1x1(planes, out, stride), nn.BatchNorm2d(out))
            layers += [block(planes, out, stride, down)] + [block(out, out) for _ in range(n - 1)]
            planes = out
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.relu(self.bn1(self.conv1(x))))
        return self.fc(self.pool(x).flatten(1))


class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al., "Identity mappings", 2016):
    ``y = x' + conv(relu(bn(conv(relu(bn(x))))))``, ``x'`` = x or a 1 x 1 projection of relu(bn(x))."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(inplanes), nn.BatchNorm2d(planes)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.relu = nn.ReLU(inplace=False)
        self.downsample = None if downsample is None else downsample[0]  # projection conv only, no BN

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.relu(self.bn1(x))
        short = x if self.downsample is None else self.downsample(a)
        return short + self.conv2(self.relu(self.bn2(self.conv1(a))))


class PreActResNet(CifarResNet):
    """:class:`CifarResNet` with :class:`PreActBlock` and a final BN-ReLU before pooling."""

    def __init__(self, blocks: tuple[int, ...], width: int, num_classes: int) -> None:
        super().__init__(blocks, width, num_classes, block=PreActBlock)
        self.bn1 = nn.Identity()  # pre-activation: the stem is a bare convolution
        self.relu = nn.Identity()
        planes = self.fc.in_features
        self.post = nn.Sequential(nn.BatchNorm2d(planes), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.post(self.layers(self.conv1(x)))).flatten(1))


# ---------------------------------------------------------------------------------------------
# The zoo
# ---------------------------------------------------------------------------------------------
def _stride1(conv: nn.Conv2d, padding: int | None = None) -> None:
    conv.stride = (1, 1)
    if padding is not None:
        conv.padding = (padding, padding)


def _vgg(cfg: list, hidden: int, n: int) -> tuple[nn.Module, str]:
    """torchvision VGG with a small classifier on globally pooled features. VGG's constructor always
    makes the 4096-wide ImageNet classifier, so the shell is built on the meta device (no memory,
    no RNG draws) and the real layers get VGG's own initialisation."""
    with torch.device("meta"):
        net = VGG(nn.Identity(), num_classes=n, init_weights=False)
    width = [c for c in cfg if c != "M"][-1]
    net.features = make_layers(cfg, batch_norm=True)
    net.avgpool = nn.AdaptiveAvgPool2d(1)
    net.classifier = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(True), nn.Dropout(0.5), nn.Linear(hidden, n))
    for m in net.modules():  # as VGG(init_weights=True)
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    return net, "classifier"


def _densenet(growth: int, blocks: tuple[int, ...], init: int, n: int) -> tuple[nn.Module, str]:
    net = DenseNet(growth_rate=growth, block_config=blocks, num_init_features=init, num_classes=n)
    net.features.conv0 = nn.Conv2d(3, init, 3, 2, 1, bias=False)
    nn.init.kaiming_normal_(net.features.conv0.weight)
    net.features.pool0 = nn.Identity()
    return net, "classifier"


def _mobilenet_v2(width: float, n: int) -> tuple[nn.Module, str]:
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 3, 2], [6, 96, 2, 1]]
    net = MobileNetV2(num_classes=n, width_mult=width, inverted_residual_setting=setting)
    _stride1(net.features[0][0])
    return net, "classifier"


def _mobilenet_v3(width: float, n: int) -> tuple[nn.Module, str]:
    rows = [(16, 3, 16, 16, True, "RE", 1), (16, 3, 72, 24, False, "RE", 2), (24, 3, 88, 24, False, "RE", 1),
            (24, 5, 96, 40, True, "HS", 2), (40, 5, 240, 40, True, "HS", 1), (40, 5, 120, 48, True, "HS", 1),
            (48, 5, 288, 96, True, "HS", 2), (96, 5, 576, 96, True, "HS", 1)]
    setting = [InvertedResidualConfig(i, k, e, o, se, act, s, 1, width) for i, k, e, o, se, act, s in rows]
    net = MobileNetV3(setting, last_channel=256, num_classes=n)
    _stride1(net.features[0][0])
    return net, "classifier"


def _shufflenet(out: list[int], n: int) -> tuple[nn.Module, str]:
    net = ShuffleNetV2([2, 4, 2], out, num_classes=n)
    _stride1(net.conv1[0])
    net.maxpool = nn.Identity()
    return net, "fc"


def _squeezenet(n: int) -> tuple[nn.Module, str]:
    net = SqueezeNet("1_1", num_classes=n)
    _stride1(net.features[0], padding=1)
    # no ReLU on the logits: with the head on pooled features (see _pooled_head) it dies in the first steps
    net.classifier = nn.Sequential(*(m for m in net.classifier if not isinstance(m, nn.ReLU)))
    return net, "classifier"


def _mnasnet(alpha: float, n: int) -> tuple[nn.Module, str]:
    net = MNASNet(alpha, num_classes=n)
    _stride1(net.layers[0])
    return net, "classifier"


def _efficientnet(width: float, n: int) -> tuple[nn.Module, str]:
    rows = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 2),
            (6, 5, 1, 80, 112, 1)]
    setting = [MBConvConfig(e, k, s, i, o, layers, width_mult=width) for e, k, s, i, o, layers in rows]
    net = EfficientNet(setting, dropout=0.2, stochastic_depth_prob=0.0, num_classes=n)
    _stride1(net.features[0][0])
    return net, "classifier"


def _regnet(depths: list[int], widths: list[int], n: int) -> tuple[nn.Module, str]:
    params = BlockParams(depths=depths, widths=widths, group_widths=[8] * len(depths),
                         bottleneck_multipliers=[1.0] * len(depths), strides=[2] * len(depths), se_ratio=0.25)
    net = RegNet(params, num_classes=n, stem_width=16)
    _stride1(net.stem[0])
    return net, "fc"


def _convnext(dims: tuple[int, ...], depths: tuple[int, ...], n: int) -> tuple[nn.Module, str]:
    setting = [CNBlockConfig(d, dims[i + 1] if i + 1 < len(dims) else None, k) for i, (d, k) in enumerate(zip(dims, depths))]
    net = ConvNeXt(setting, stochastic_depth_prob=0.0, num_classes=n)
    stem = nn.Conv2d(3, dims[0], kernel_size=2, stride=2)
    nn.init.trunc_normal_(stem.weight, std=0.02)
    nn.init.zeros_(stem.bias)
    net.features[0][0] = stem
    return net, "classifier"


@dataclass(frozen=True)
class ZooEntry:
    """One backbone: ``make(num_classes) -> (torchvision-style net, name of its head attribute)``;
    ``definition`` says which code defines it and what was changed; ``input_size`` and ``mean`` /
    ``std`` are the inputs its weights expect; ``source_recipe`` overrides the pre-training config
    for this backbone alone (pairs such as ``("optimizer", "adam")``; recorded in the manifest)."""

    name: str
    family: str
    definition: str
    make: Callable[[int], tuple[nn.Module, str]]
    input_size: int = 32
    mean: tuple[float, ...] = CIFAR_STATS[0]
    std: tuple[float, ...] = CIFAR_STATS[1]
    source_recipe: tuple[tuple[str, object], ...] = ()

    def params(self, num_classes: int = 5) -> int:
        """Parameters of the backbone with a ``num_classes`` head."""
        return _param_count(self.name, num_classes)


_S1 = "first convolution at stride 1"
ZOO: dict[str, ZooEntry] = {e.name: e for e in (
    ZooEntry("resnet8", "ResNet", "nasbeff CifarResNet on torchvision BasicBlock, blocks (1,1,1), width 16",
             lambda n: (CifarResNet((1, 1, 1), 16, n), "fc")),
    ZooEntry("resnet20", "ResNet", "nasbeff CifarResNet on torchvision BasicBlock, blocks (3,3,3), width 16",
             lambda n: (CifarResNet((3, 3, 3), 16, n), "fc")),
    ZooEntry("preact_resnet10", "PreActResNet", "nasbeff PreActResNet (He et al. 2016b), blocks (1,1,1,1), width 16",
             lambda n: (PreActResNet((1, 1, 1, 1), 16, n), "fc")),
    ZooEntry("vgg_tiny_bn", "VGG", "torchvision VGG + make_layers(batch_norm) cfg [16,M,32,M,64,M,128,M], "
             "global average pool, classifier 128-64-k", lambda n: _vgg([16, "M", 32, "M", 64, "M", 128, "M"], 64, n)),
    ZooEntry("vgg8_bn", "VGG", "torchvision VGG + make_layers(batch_norm) cfg [32,M,64,M,128,128,M,256,256,M], "
             "global average pool, classifier 256-256-k",
             lambda n: _vgg([32, "M", 64, "M", 128, 128, "M", 256, 256, "M"], 256, n)),
    ZooEntry("densenet_s", "DenseNet", "torchvision DenseNet(growth_rate=12, block_config=(4,4,4), "
             "num_init_features=24); 3x3 stem at stride 2, no stem max-pool", lambda n: _densenet(12, (4, 4, 4), 24, n)),
    ZooEntry("mobilenet_v2", "MobileNetV2", f"torchvision MobileNetV2(width_mult=0.5), 5 inverted-residual stages "
             f"(strides 1,2,2,2,1); {_S1}", lambda n: _mobilenet_v2(0.5, n)),
    ZooEntry("mobilenet_v3", "MobileNetV3", "torchvision MobileNetV3, 8 InvertedResidualConfig rows (small-like, "
             f"width_mult=0.5), last_channel 256; {_S1}", lambda n: _mobilenet_v3(0.5, n)),
    ZooEntry("shufflenet_v2", "ShuffleNetV2", "torchvision ShuffleNetV2(stages_repeats=[2,4,2], "
             f"stages_out_channels=[24,48,96,192,512]); {_S1}, no max-pool",
             lambda n: _shufflenet([24, 48, 96, 192, 512], n)),
    ZooEntry("squeezenet", "SqueezeNet", f"torchvision SqueezeNet('1_1'); {_S1} (padding 1); the head pools "
             "first, without the ReLU on its logits; pre-trained with Adam lr 1e-3 (no BatchNorm: under the zoo's "
             "SGD lr 0.05 its features collapse in the first steps and it stays at chance)",
             _squeezenet, source_recipe=(("optimizer", "adam"), ("lr", 1e-3))),
    ZooEntry("mnasnet", "MNASNet", f"torchvision MNASNet(alpha=0.5); {_S1}", lambda n: _mnasnet(0.5, n)),
    ZooEntry("efficientnet", "EfficientNet", "torchvision EfficientNet, 5 MBConvConfig stages (B0-like, "
             f"width_mult=0.5), no stochastic depth; {_S1}", lambda n: _efficientnet(0.5, n)),
    ZooEntry("regnet", "RegNet", "torchvision RegNet(BlockParams(depths=[1,2,3], widths=[32,64,128], group width "
             f"8, SE 0.25), stem_width=16); {_S1}", lambda n: _regnet([1, 2, 3], [32, 64, 128], n)),
    ZooEntry("convnext", "ConvNeXt", "torchvision ConvNeXt, CNBlockConfig dims (32,64,128) x depths (2,2,2), "
             "2x2 stride-2 stem", lambda n: _convnext((32, 64, 128), (2, 2, 2), n)),
)}

TV_INPUT_SIZE = {"inception_v3": 299}


def entry(name: str) -> ZooEntry:
    """The :class:`ZooEntry` of a zoo name, or of ``tv:<torchvision model name>`` (torchvision's
    unchanged ImageNet definition, ImageNet normalisation, 224 px)."""
    if name in ZOO:
        return ZOO[name]
    if name.startswith("tv:"):
        import torchvision.models as tvm

        arch = name[3:]
        if arch not in tvm.list_models(module=tvm):
            raise ValueError(f"unknown torchvision model {arch!r} in {name!r} (see torchvision.models.list_models())")
        size = TV_INPUT_SIZE.get(arch, 224)

        def make(n: int) -> tuple[nn.Module, str]:
            kw = {"aux_logits": False, "init_weights": False} if arch in ("inception_v3", "googlenet") else {}
            net = tvm.get_model(arch, weights=None, num_classes=n, **kw)
            return net, next(a for a in _HEAD_ATTRS if hasattr(net, a))

        return ZooEntry(name, "torchvision", f"torchvision.models.{arch} (ImageNet definition, {size} px)", make, size,
                        *IMAGENET_STATS)
    raise ValueError(f"unknown zoo model {name!r}; choose from {', '.join(ZOO)} or tv:<torchvision model>")


def _pooled_head(net: nn.Module, attr: str) -> nn.Module:
    """Detach ``net.<attr>`` as the head; the body then ends with pooled features."""
    head = getattr(net, attr)
    if isinstance(net, SqueezeNet):  # its classifier pools after the 1x1 conv: pool first instead
        net.classifier = nn.AdaptiveAvgPool2d(1)
    else:
        setattr(net, attr, nn.Identity())
    spatial = any(isinstance(m, nn.Conv2d) or type(m).__name__ == "LayerNorm2d" for m in head.modules())
    return _SpatialHead(*head) if spatial else head


def build(name: str, num_classes: int = 5) -> ZooNet:
    """The zoo backbone ``name`` (or ``tv:<model>``) with a fresh ``num_classes`` head, initialised
    by its definition's own scheme from torch's current RNG state."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    e = entry(name)
    net, attr = e.make(num_classes)
    if name in ZOO:  # see the module docstring: BatchNorm momentum
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = 0.1
    head = _pooled_head(net, attr)
    was = net.training
    net.eval()
    with torch.no_grad():
        dim = net(torch.zeros(2, 3, e.input_size, e.input_size)).flatten(1).shape[1]
    net.train(was)
    return ZooNet(net, head, dim, name)


@lru_cache(maxsize=None)
def _param_count(name: str, num_classes: int) -> int:
    state = torch.get_rng_state()
    try:
        return sum(p.numel() for p in build(name, num_classes).parameters())
    finally:
        torch.set_rng_state(state)


def zoo_table(num_classes: int = 5) -> list[dict]:
    """One row per zoo backbone: name, family, params (with a ``num_classes`` head), feature_dim, definition."""
    rows = []
    for e in ZOO.values():
        state = torch.get_rng_state()
        net = build(e.name, num_classes)
        torch.set_rng_state(state)
        rows.append({"name": e.name, "family": e.family, "params": e.params(num_classes),
                     "feature_dim": net.feature_dim, "definition": e.definition})
    return rows


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------
def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _head_attr(name: str) -> str:
    state = torch.get_rng_state()
    try:
        return entry(name).make(2)[1]
    finally:
        torch.set_rng_state(state)


def load_weights(name: str, path: str | os.PathLike) -> ZooNet:
    """Backbone ``name`` with the weights of the state_dict file ``path``: either nasbeff's own
    (``nasbeff zoo pretrain``; keys ``body.*`` / ``head.*``) or torchvision's layout for the same
    definition (e.g. a user's ImageNet ``resnet50`` weights for ``tv:resnet50``; the head's keys
    ``fc.*`` / ``classifier.*`` become ``head.*``). The head's class count is read from the file.
    A file that is not a state_dict, or whose keys or shapes do not match, is one ValueError naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} not found")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch/zip/pickle raise many types for a bad file
        raise ValueError(f"{path}: not a readable torch state_dict ({type(exc).__name__})") from None
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"{path}: not a state_dict (a dict of tensors)")
    meta = getattr(sd, "_metadata", None)  # module versions (torchvision's MNASNet refuses a state_dict without)
    if not any(k.startswith(("body.", "head.")) for k in sd):
        attr = _head_attr(name)

        def ours(k: str) -> str:
            return "head" + k[len(attr):] if k == attr or k.startswith(attr + ".") else "body" + ("." + k if k else "")

        sd = {ours(k): v for k, v in sd.items()}
        meta = None if meta is None else {ours(k): v for k, v in meta.items()}
    head_w = [v for k, v in sd.items() if k.startswith("head.") and k.endswith("weight") and v.ndim >= 2]
    if not head_w:
        raise ValueError(f"{path}: no classifier weights for {name} (expected head.* or the torchvision head's keys)")
    net = build(name, int(head_w[-1].shape[0]))
    want = net.state_dict()
    missing = sorted(set(want) - set(sd))
    extra = sorted(set(sd) - set(want))
    shapes = [k for k in want if k in sd and sd[k].shape != want[k].shape]
    if missing or extra or shapes:
        what = "; ".join(f"{label} {keys[:3]}{' ...' if len(keys) > 3 else ''}" for label, keys in
                         (("missing", missing), ("unexpected", extra), ("shape mismatch", shapes)) if keys)
        raise ValueError(f"{path}: not weights of {name} ({what})")
    state = OrderedDict(sd)
    # a plain dict (nasbeff's own files, a user's re-saved one) carries no versions: this definition's
    state._metadata = {**want._metadata, **(meta or {})}  # type: ignore[attr-defined]
    net.load_state_dict(state)
    return net
