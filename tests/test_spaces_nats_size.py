"""NATS-Bench size space: strings, NATS index order, search helpers, and the model builder
(state_dict and outputs vs xautodl's DynamicShapeTinyNet)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nasbeff.spaces import (
    NATS_SIZE_CELL,
    NATS_SIZE_CHOICES,
    NATS_SIZE_NUM_ARCHS,
    NATSSizeArch,
    NATSSizeSpace,
    TinyCellNetwork,
    build_nats_size_model,
    format_size_str,
    is_valid_size_str,
    mutate_size_arch,
    parse_size_str,
    sample_size_archs,
    sample_size_indices,
    size_arch_to_index,
    size_index_to_arch,
    size_index_to_str,
    size_neighbours,
    size_str_to_index,
    str_to_index,
    to_size_arch,
)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny CPU models: one intra-op thread avoids oversubscription on shared cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_constants():
    assert NATS_SIZE_CHOICES == (8, 16, 24, 32, 40, 48, 56, 64)
    assert NATS_SIZE_NUM_ARCHS == 32768
    assert str_to_index(NATS_SIZE_CELL) == 9930  # best CIFAR-100 cell of the topology space


def test_index_order_is_nats_traversal():
    # NATS builds its list by extending strings position by position, widths ascending.
    expected = [":".join(map(str, p)) for p in itertools.product(NATS_SIZE_CHOICES, repeat=5)]
    got = [size_index_to_str(i) for i in range(NATS_SIZE_NUM_ARCHS)]
    assert got == expected
    assert size_index_to_str(0) == "8:8:8:8:8" and size_index_to_str(32767) == "64:64:64:64:64"
    assert size_str_to_index("8:8:8:8:16") == 1 and size_str_to_index("16:8:8:8:8") == 4096


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(NATS_SIZE_CHOICES), min_size=5, max_size=5))
def test_roundtrip(chs):
    a = NATSSizeArch(tuple(chs))
    s = format_size_str(a)
    assert parse_size_str(s) == a == to_size_arch(s) == to_size_arch(chs) and is_valid_size_str(s)
    assert size_index_to_arch(size_arch_to_index(a)) == a == NATSSizeArch.from_index(a.index)
    assert str(a) == a.to_str() == s and a.positions == tuple(c // 8 - 1 for c in chs)


@pytest.mark.parametrize(
    "bad, match",
    [
        ("64:64:64:64", "5 ':'-separated values"),
        ("64:64:64:64:64:64", "5 ':'-separated values"),
        ("64:64:65:64:64", "channel '65' at position 2"),
        ("64:64:x:64:64", "channel 'x' at position 2"),
        ("64:64::64:64", "channel '' at position 2"),
        ("0:64:64:64:64", "channel '0' at position 0"),
    ],
)
def test_parse_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        parse_size_str(bad)
    assert not is_valid_size_str(bad)


def test_other_errors():
    with pytest.raises(ValueError, match="5 channel values"):
        NATSSizeArch((8, 8))
    with pytest.raises(ValueError, match="channel 12 at position 1"):
        NATSSizeArch((8, 12, 8, 8, 8))
    with pytest.raises(ValueError, match="out of range"):
        size_index_to_arch(NATS_SIZE_NUM_ARCHS)
    with pytest.raises(ValueError, match="must be an int"):
        size_index_to_arch("3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be a str"):
        parse_size_str(64)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot interpret"):
        to_size_arch(2.0)  # type: ignore[arg-type]


def test_sampling_mutation_neighbours():
    a = sample_size_indices(np.random.default_rng(5), 100)
    assert np.array_equal(a, sample_size_indices(5, 100)) and len(set(a.tolist())) == 100
    assert [x.index for x in sample_size_archs(5, 100)] == a.tolist()
    with pytest.raises(ValueError, match="distinct"):
        sample_size_indices(0, NATS_SIZE_NUM_ARCHS + 1)
    rng = np.random.default_rng(0)
    parent = parse_size_str("8:16:24:32:64")
    pos = np.zeros(5)
    for _ in range(1000):
        child = mutate_size_arch(parent, rng)
        diff = [k for k in range(5) if child.channels[k] != parent.channels[k]]
        assert len(diff) == 1
        pos[diff[0]] += 1
    assert np.allclose(pos / 1000, 0.2, atol=0.05)
    same = sum(mutate_size_arch(parent, rng, allow_same=True) == parent for _ in range(800))
    assert 50 < same < 160  # NATS REA: 1/8 of the draws keep the parent
    nb = size_neighbours(parent)
    assert len(nb) == 35 == len(set(nb)) and parent not in nb
    assert all(sum(x != y for x, y in zip(n.channels, parent.channels)) == 1 for n in nb)


def test_space_object():
    sp = NATSSizeSpace()
    assert len(sp) == 32768 and "64:64:64:64:64" in sp and "64:64" not in sp
    assert next(iter(sp)) == NATSSizeArch((8, 8, 8, 8, 8))
    assert sp.str_to_index("64:64:64:64:64") == 32767
    assert sp.param_count("64:64:64:64:64") == _n_params(sp.build_model("64:64:64:64:64", device="meta"))


def test_model_structure_and_digits_input():
    m = build_nats_size_model("8:16:24:32:40", num_classes=10, in_channels=1)
    assert isinstance(m, TinyCellNetwork) and m.channels == (8, 16, 24, 32, 40)
    assert len(m.cells) == 5 and m.feature_dim == 40 and m.classifier.in_features == 40
    x = torch.randn(4, 1, 8, 8)
    f, logits = m.forward_with_features(x)
    assert f.shape == (4, 40) and logits.shape == (4, 10)
    # cell 2 widens 16 -> 24: its skip_connect~0 edge is Conv1x1-BN, its node-0 convs are 16 -> 24
    cell = m.cells[2]
    assert cell.layers[3].conv.weight.shape == (24, 16, 1, 1)
    assert cell.layers[0].op[1].weight.shape == (24, 16, 3, 3)
    assert cell.layers[2].op[1].weight.shape == (24, 24, 3, 3)


def test_param_count_closed_form_vs_modules():
    rng = np.random.default_rng(3)
    for i in rng.choice(NATS_SIZE_NUM_ARCHS, 120, replace=False).tolist() + [0, 32767]:
        nc = (10, 100, 120)[i % 3]
        assert _n_params(build_nats_size_model(i, nc, device="meta")) == NATSSizeSpace.param_count(i, nc), i


# ------------------------------------------------------------------------------------------
# equivalence with xautodl's DynamicShapeTinyNet ('infer.shape.tiny')
# ------------------------------------------------------------------------------------------
def _randomise_(m: torch.nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for name, t in m.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen, dtype=t.dtype) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=gen, dtype=t.dtype) * 0.3)


def test_matches_xautodl_dynamic_shape_net():
    pytest.importorskip("xautodl")
    from xautodl.models import get_cell_based_tiny_net

    rng = np.random.default_rng(11)
    archs = rng.choice(NATS_SIZE_NUM_ARCHS, 55, replace=False).tolist()
    extremes = ("8:8:8:8:8", "64:64:64:64:64", "64:8:64:8:64", "8:64:8:64:8", "16:48:24:64:32")
    archs += [size_str_to_index(s) for s in extremes]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 8, 8, generator=gen, dtype=torch.float64)
    for k, i in enumerate(archs):
        nc = (10, 100, 120)[k % 3]
        s = size_index_to_str(i)
        ref = get_cell_based_tiny_net(
            {"name": "infer.shape.tiny", "channels": s, "genotype": NATS_SIZE_CELL, "num_classes": nc}
        ).double()
        ours = build_nats_size_model(s, nc).double()
        ref_sd, our_sd = ref.state_dict(), ours.state_dict()
        assert list(ref_sd) == list(our_sd), s
        assert [v.shape for v in ref_sd.values()] == [v.shape for v in our_sd.values()], s
        assert _n_params(ref) == _n_params(ours) == NATSSizeSpace.param_count(s, nc)
        _randomise_(ref, gen)
        ours.load_state_dict(ref.state_dict())
        ref.eval(), ours.eval()
        with torch.no_grad():
            ref_f, ref_logits = ref(x)
            f, logits = ours.forward_with_features(x)
        torch.testing.assert_close(f, ref_f, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(logits, ref_logits, rtol=1e-10, atol=1e-12)
        if k < 3:
            ref.train(), ours.train()
            with torch.no_grad():
                torch.testing.assert_close(ours(x), ref(x)[1], rtol=1e-10, atol=1e-12)
