"""Real view (crop + flip), virtual view (per-image RandAugment), Normalize and to_uint8."""

import pytest
import torch

from vrm_train.data import GEOMETRIC_OPS, RANDAUGMENT_OPS, Normalize, RealView, VirtualView, augment, to_uint8

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def random_images(b=8, c=3, h=32, w=32, seed=0):
    return torch.randint(
        0, 256, (b, c, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed)
    )


@pytest.mark.parametrize("device", DEVICES)
def test_real_view_crop_moves_a_single_pixel_by_the_sampled_offset(device):
    b, h, w, p = 64, 9, 11, 3
    x = torch.zeros(b, 2, h, w, dtype=torch.uint8)
    r, c = 4, 6
    x[:, :, r, c] = 255
    view = RealView(padding=p, flip=False)
    torch.manual_seed(3)
    plan = view.sample(b)
    torch.manual_seed(3)
    out = view(x.to(device)).cpu()
    assert out.dtype == torch.float32 and out.shape == (b, 2, h, w)
    assert plan.oy.min() >= 0 and plan.oy.max() <= 2 * p and len(set(plan.oy.tolist())) > 3
    for i in range(b):
        rr, cc = r + p - int(plan.oy[i]), c + p - int(plan.ox[i])
        expected = torch.zeros(h, w)
        if 0 <= rr < h and 0 <= cc < w:
            expected[rr, cc] = 1.0
        assert torch.equal(out[i, 0], expected) and torch.equal(out[i, 1], expected)
    # Shifts are per image: the batch does not move as one.
    assert len({(int(a), int(b_)) for a, b_ in zip(plan.oy, plan.ox, strict=True)}) > 10


def test_real_view_flip_mirrors_and_crop_pads_with_zeros():
    x = random_images(b=200, h=6, w=7)
    view = RealView(padding=0, flip=True)
    torch.manual_seed(0)
    plan = view.sample(200)
    torch.manual_seed(0)
    out = view(x)
    xf = x.float() / 255
    for i in range(200):
        assert torch.equal(out[i], xf[i].flip(-1) if plan.flip[i] else xf[i])
    assert 60 < int(plan.flip.sum()) < 140
    # Crop + flip together: the flipped crop of the zero-padded image.
    view = RealView(padding=2, flip=True)
    torch.manual_seed(5)
    plan = view.sample(200)
    torch.manual_seed(5)
    out = view(x)
    padded = torch.nn.functional.pad(xf, (2, 2, 2, 2))
    for i in range(200):
        crop = padded[i, :, plan.oy[i] : plan.oy[i] + 6, plan.ox[i] : plan.ox[i] + 7]
        assert torch.equal(out[i], crop.flip(-1) if plan.flip[i] else crop)


def test_real_view_disabled_is_conversion_only_and_seeded():
    x = random_images()
    assert torch.equal(RealView(padding=0, flip=False)(x), x.float() / 255)
    f = x.float() / 255
    assert torch.equal(RealView(padding=0, flip=False)(f), f)
    view = RealView(4)
    torch.manual_seed(1)
    a = view(x)
    torch.manual_seed(1)
    b = view(x)
    c = view(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(RealView(4, generator=g1)(x), RealView(4, generator=g2)(x))
    with pytest.raises(ValueError, match="padding"):
        RealView(-1)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("c", "size"), [(3, 32), (1, 28), (1, 8)])
def test_virtual_view_shapes_range_and_determinism(device, c, size):
    x = (random_images(b=48, c=c, h=size, w=size).float() / 255).to(device)
    view = VirtualView(num_ops=2, magnitude=15)
    torch.manual_seed(0)
    a = view(x)
    torch.manual_seed(0)
    b = view(x)
    assert a.shape == x.shape and a.dtype == x.dtype and a.device == x.device
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, view(x))
    assert (a - x).abs().mean() > 0.01


def test_virtual_view_draws_ops_per_image():
    # 256 copies of one image: a per-batch op choice would give at most a handful of distinct outputs.
    x = random_images(b=1, c=3, h=16, w=16).float().div(255).expand(256, -1, -1, -1).contiguous()
    view = VirtualView(num_ops=1, magnitude=12)
    torch.manual_seed(0)
    plan = view.sample(256, 3)
    torch.manual_seed(0)
    out = view(x)
    distinct = torch.unique(out.flatten(1), dim=0).shape[0]
    assert distinct >= 15
    # Ops are uniform over the 14 candidates: every op drawn, none dominant.
    counts = torch.bincount(plan.op_ids[0], minlength=len(RANDAUGMENT_OPS))
    assert counts.min() > 3 and counts.max() < 45
    # Images that drew identity are untouched; images that drew a translation are changed.
    ids = plan.op_ids[0]
    ident = ids == RANDAUGMENT_OPS.index("identity")
    assert torch.equal(out[ident], x[ident])
    moved = ids == RANDAUGMENT_OPS.index("translate_x")
    assert ((out[moved] - x[moved]).abs().flatten(1).amax(1) > 0.05).all()
    # forward == apply(sample): the plan describes exactly what was applied.
    assert torch.equal(view.apply(x, plan), out)
    # Per slot and per image over several steps: both slots vary independently.
    two = VirtualView(num_ops=2).sample(512, 3)
    assert (two.op_ids[0] != two.op_ids[1]).float().mean() > 0.8
    assert set(two.signs.unique().tolist()) == {-1.0, 1.0}


def test_virtual_view_one_channel_drops_color():
    view = VirtualView()
    assert "color" in view.op_names(3) and "color" not in view.op_names(1)
    assert len(view.op_names(1)) == len(RANDAUGMENT_OPS) - 1
    assert view.sample(10, 1).names == view.op_names(1)
    torch.manual_seed(0)
    assert VirtualView(ops=["color"])(torch.rand(4, 1, 8, 8)).shape == (4, 1, 8, 8)


def test_virtual_view_disabled_returns_input():
    x = torch.rand(4, 3, 8, 8)
    assert VirtualView(num_ops=0)(x) is x
    assert VirtualView(enabled=False)(x) is x
    with pytest.raises(ValueError, match="magnitude"):
        VirtualView(magnitude=31)
    with pytest.raises(ValueError, match="unknown"):
        VirtualView(ops=["cutout"])
    with pytest.raises(ValueError, match="num_ops"):
        VirtualView(num_ops=-1)


def single_op(name, x, sign, magnitude):
    view = VirtualView(num_ops=1, magnitude=magnitude, ops=[name])
    plan = view.sample(x.shape[0], x.shape[1])
    plan = plan._replace(signs=torch.full_like(plan.signs, float(sign)))
    return view.apply(x, plan)


def test_virtual_view_ops_follow_their_definitions():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 12, 331) * 0.6 + 0.2
    level = 0.5
    m = 30 * level
    assert torch.allclose(single_op("brightness", x, 1, m), (x * (1 + 0.9 * level)).clamp(0, 1))
    assert torch.allclose(single_op("brightness", x, -1, m), x * (1 - 0.9 * level))
    sol = single_op("solarize", x, 1, m)
    assert torch.allclose(sol, torch.where(x > 0.5, 1 - x, x))
    xq = (x * 255).round() / 255
    post = single_op("posterize", xq, 1, m)  # 8 - round(2) = 6 bits: multiples of 4/255
    assert torch.allclose(post * 255 / 4, (post * 255 / 4).round(), atol=1e-4)
    assert (post <= xq + 1e-6).all() and (xq - post).max() < 4 / 255 - 1e-6
    assert (post < xq - 1e-6).any()
    gray = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    col = single_op("color", x, -1, m)
    assert torch.allclose(col, gray + (1 - 0.9 * level) * (x - gray), atol=1e-6)
    con = single_op("contrast", x, -1, m)
    mu = gray.mean((1, 2, 3), keepdim=True)
    assert torch.allclose(con, mu + (1 - 0.9 * level) * (x - mu), atol=1e-6)
    ac = single_op("auto_contrast", x, 1, m)
    assert torch.allclose(ac.amin((2, 3)), torch.zeros(4, 3)) and torch.allclose(
        ac.amax((2, 3)), torch.ones(4, 3)
    )
    # translate_x at magnitude 30 * 2 / 150 shifts by (150 / 331) * (2 / 150) * 331 = 2 pixels.
    for sign in (1, -1):
        t = single_op("translate_x", x, sign, 30 * 2 / 150)
        shifted = torch.roll(x, 2 * sign, dims=-1)
        inner = slice(2, -2)
        assert torch.allclose(t[..., inner], shifted[..., inner], atol=1e-3)
        edge = t[..., :2] if sign == 1 else t[..., -2:]
        assert torch.allclose(edge, torch.zeros_like(edge), atol=1e-4)
    # Rotation by 30 * level degrees keeps the centre pixel of an odd-sized image.
    sq = torch.rand(2, 1, 9, 9)
    rot = single_op("rotate", sq, 1, 30)
    assert torch.allclose(rot[..., 4, 4], sq[..., 4, 4], atol=1e-5) and not torch.allclose(rot, sq)
    # shear_x by 0.3 moves row r by 0.3 * (r - centre) pixels; the centre row stays.
    sh = single_op("shear_x", sq, 1, 30)
    assert torch.allclose(sh[..., 4, 2:7], sq[..., 4, 2:7], atol=1e-5) and not torch.allclose(sh, sq)
    eq = single_op("equalize", (x * 0.3 + 0.1), 1, m)
    assert eq.amax() > 0.9  # a low-contrast image is stretched over the range
    sharp = single_op("sharpness", x, 1, m)
    assert not torch.allclose(sharp, x) and torch.allclose(sharp[..., 0, :], x[..., 0, :])
    assert torch.equal(single_op("identity", x, 1, m), x)
    # Magnitude 0: every enhance op is the identity.
    for name in ("brightness", "color", "contrast", "sharpness", "solarize", "posterize", "rotate"):
        assert torch.allclose(single_op(name, xq, 1, 0), xq, atol=1e-3 if name == "rotate" else 1e-6), name


def test_normalize_and_to_uint8():
    norm = Normalize((0.5, 0.4, 0.3), (0.2, 0.1, 0.5))
    x = torch.rand(2, 3, 4, 4)
    expected = (x - torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)) / torch.tensor([0.2, 0.1, 0.5]).view(
        1, 3, 1, 1
    )
    assert torch.allclose(norm(x), expected)
    assert set(dict(norm.named_buffers())) == {"mean", "std"}
    u = random_images(b=2)
    assert torch.equal(to_uint8(u.float() / 255), u)
    assert to_uint8(torch.tensor([-0.5, 0.5, 2.0])).tolist() == [0, 128, 255]


def test_virtual_view_runs_each_op_once_per_slot_on_a_group(monkeypatch):
    # No per-image loop: each slot calls each drawn op once, on all the images that drew it; the geometric
    # ops share one warp with per-image matrices.
    calls = []
    real_op = augment._op

    def counting_op(name, x, *args):
        calls.append((name, x.shape[0]))
        return real_op(name, x, *args)

    monkeypatch.setattr(augment, "_op", counting_op)
    view = VirtualView(num_ops=2, magnitude=9)
    torch.manual_seed(0)
    plan = view.sample(256, 3)
    out = view.apply(torch.rand(256, 3, 16, 16), plan)
    assert out.shape == (256, 3, 16, 16)
    n_groups = len(RANDAUGMENT_OPS) - len(GEOMETRIC_OPS) + 1
    assert len(calls) == 2 * n_groups and sum(n for _, n in calls) == 2 * 256
    expected = []
    for k in range(2):
        drawn = [plan.names[i] for i in plan.op_ids[k].tolist()]
        expected += [(n, drawn.count(n)) for n in set(drawn) - GEOMETRIC_OPS]
        expected.append(("affine", sum(n in GEOMETRIC_OPS for n in drawn)))
    assert sorted(c for c in calls if c[1]) == sorted(e for e in expected if e[1])


def test_geometric_ops_match_references():
    torch.manual_seed(0)
    x = torch.rand(3, 2, 9, 13)
    # Rotation about the centre, zero fill: kornia's rotate (positive sign = clockwise = kornia's -angle).
    from kornia.geometry.transform import rotate

    for sign in (1, -1):
        ref = rotate(x, torch.full((3,), -30.0 * sign), align_corners=True)
        assert torch.allclose(single_op("rotate", x, sign, 30), ref, atol=1e-5)
    # shear_x by s: row y is shifted right by s * (y - cy) pixels (linear interpolation, zero fill).
    s, cy = 0.3, 4.0
    out = single_op("shear_x", x, 1, 30)
    cols = torch.arange(13, dtype=torch.float64)
    for y in range(9):
        src = cols - s * (y - cy)
        lo = src.floor().long()
        frac = (src - lo).float()
        padded = torch.nn.functional.pad(x[:, :, y], (1, 1))  # index i + 1 = pixel i, zeros outside
        left = padded[..., (lo + 1).clamp(0, 14)] * ((lo >= -1) & (lo <= 12)).float()
        right = padded[..., (lo + 2).clamp(0, 14)] * ((lo + 1 >= -1) & (lo + 1 <= 12)).float()
        assert torch.allclose(out[:, :, y], left * (1 - frac) + right * frac, atol=1e-5), y
