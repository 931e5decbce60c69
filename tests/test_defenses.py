import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from landscape.config import DataSpec, DefenseSpec, ModelSpec, TrainSpec
from landscape.data import load_data
from landscape.defenses import (
    DEFENSES,
    build_defense,
    gaussian_kernel,
    jpeg_compress,
    jpeg_quant_table,
    pgd_linf,
    prepare_defense,
)
from landscape.errors import SpecError, UnknownNameError
from landscape.models import build_model
from landscape.train import train

PREPROCESS = [n for n in DEFENSES.names() if DEFENSES.get(n).kind == "preprocess"]
BATCH = [n for n in DEFENSES.names() if DEFENSES.get(n).kind == "batch"]


@pytest.fixture
def grey():
    g = torch.Generator().manual_seed(0)
    return torch.rand(16, 1, 8, 8, generator=g)


@pytest.fixture
def rgb():
    g = torch.Generator().manual_seed(1)
    return F.interpolate(torch.rand(8, 3, 4, 4, generator=g), size=16, mode="bilinear")  # smooth colour images


@pytest.fixture
def tiny_model():
    return build_model("cnn", (1, 8, 8), 4, seed=0)


def _batch(defense, model, x, y, seed=0):
    return build_defense(defense, num_classes=4).transform(model, x, y, torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------------ contract


def test_registry_has_the_issue_defenses():
    assert set(DEFENSES.names()) >= {"none", "cutout", "mixup", "jpeg", "grayscale", "bdr", "blur", "at"}
    from landscape.defenses import resolve_defense

    with pytest.raises(UnknownNameError, match="valid choices"):
        resolve_defense(DefenseSpec("uneraser"))


@pytest.mark.parametrize("name", PREPROCESS)
@pytest.mark.parametrize("channels", [1, 3])
def test_preprocess_contract(name, channels, grey, rgb):
    x = grey if channels == 1 else rgb
    x0 = x.clone()
    pre, batch = prepare_defense(DefenseSpec(name), num_classes=4)
    out = pre(x)
    assert batch is None
    assert out.shape == x.shape and out.dtype == x.dtype
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    torch.testing.assert_close(x, x0, rtol=0, atol=0)  # input untouched
    torch.testing.assert_close(out, pre(x), rtol=0, atol=0)  # deterministic
    # per image: the output of one image depends only on that image
    torch.testing.assert_close(pre(x[:3]), out[:3], rtol=0, atol=0)


@pytest.mark.parametrize("name", BATCH)
def test_batch_contract(name, grey, tiny_model):
    y = torch.arange(16) % 4
    x0, y0 = grey.clone(), y.clone()
    params0 = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    pre, batch = prepare_defense(DefenseSpec(name), num_classes=4)
    assert pre(grey) is grey  # batch defenses leave the stored training images alone
    out, target = batch(tiny_model, grey, y, torch.Generator().manual_seed(0))
    assert out.shape == grey.shape and out.dtype == grey.dtype
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert target.shape[0] == 16
    torch.testing.assert_close(grey, x0, rtol=0, atol=0)
    assert torch.equal(y, y0)
    for k, v in tiny_model.state_dict().items():
        assert torch.equal(v, params0[k]), k  # the defense never changes the model
    assert all(p.grad is None for p in tiny_model.parameters())
    out2, target2 = batch(tiny_model, grey, y, torch.Generator().manual_seed(0))
    assert torch.equal(out, out2) and torch.equal(target, target2)  # seeded by the trainer's generator


def test_none_is_identity(grey, tiny_model):
    pre, batch = prepare_defense(DefenseSpec(), num_classes=4)
    assert batch is None and pre(grey) is grey


def test_spec_options_are_completed_validated_and_keyed():
    """Resolving a defense (what the stage layer keys) completes its options, so equal settings key equally."""
    from landscape.defenses import defense_label, resolve_defense

    def resolved(text: str) -> DefenseSpec:
        return resolve_defense(DefenseSpec.parse(text))

    assert resolve_defense(DefenseSpec("jpeg")) == resolve_defense(DefenseSpec("jpeg", (("quality", 10),)))
    assert resolved("jpeg").key() == resolved("jpeg:quality=10").key()
    assert resolved("jpeg").key() != resolved("jpeg:quality=30").key()
    assert resolved("cutout:size=1") == resolved("cutout:size=1.0")
    assert resolved("at:eps=32/255").options_dict()["eps"] == pytest.approx(32 / 255)
    assert defense_label(DefenseSpec.parse("jpeg:quality=30")) == "jpeg(quality=30)"
    assert defense_label(DefenseSpec.parse("at:eps=32/255,steps=5")) == "at(eps=32/255, steps=5)"
    with pytest.raises(SpecError, match="quality"):
        resolved("jpeg:quality=0")
    with pytest.raises(SpecError, match="valid options: quality"):
        resolved("jpeg:q=3")
    with pytest.raises(SpecError, match="odd"):
        resolved("blur:kernel=4")
    assert DefenseSpec.from_dict(resolved("at").to_dict()) == resolved("at")


@pytest.mark.parametrize("text, message", [
    ("jpeg:quality=0", "defense 'jpeg' option quality = 0 is out of range; expected [1, 100]"),
    ("jpeg:quality=101", "defense 'jpeg' option quality = 101 is out of range; expected [1, 100]"),
    ("jpeg:quality=2.5", "defense 'jpeg' option quality = 2.5 must be an integer"),
    ("bdr:bits=0", "defense 'bdr' option bits = 0 is out of range; expected [1, 8]"),
    ("bdr:bits=9", "defense 'bdr' option bits = 9 is out of range; expected [1, 8]"),
    ("blur:kernel=33", "defense 'blur' option kernel = 33 is out of range; expected [1, 31]"),
    ("blur:sigma=0", "defense 'blur' option sigma = 0.0 is out of range; expected (0.0, 100.0]"),
    ("cutout:size=0", "defense 'cutout' option size = 0.0 is out of range; expected (0.0, 1.0]"),
    ("cutout:size=1.5", "defense 'cutout' option size = 1.5 is out of range; expected (0.0, 1.0]"),
    ("mixup:alpha=0", "defense 'mixup' option alpha = 0.0 is out of range; expected (0.0, 1000.0]"),
    ("at:eps=0", "defense 'at' option eps = 0.0 is out of range; expected (0.0, 1.0]"),
    ("at:steps=0", "defense 'at' option steps = 0 is out of range; expected [1, 1000]"),
    ("at:step=2", "defense 'at' option step = 2.0 is out of range; expected (0.0, 1.0]"),
    ("at:random_start=1", "defense 'at' option random_start = 1 must be true or false"),
])
def test_out_of_range_options_are_refused_naming_the_option_value_and_range(text, message):
    from landscape.defenses import resolve_defense

    with pytest.raises(SpecError) as err:
        resolve_defense(DefenseSpec.parse(text))
    assert str(err.value) == message


# ------------------------------------------------------------------------------------------------ JPEG


def test_jpeg_quant_table_matches_libjpeg_scaling():
    assert jpeg_quant_table(50)[0, 0] == 16  # quality 50 = the Annex K table
    assert jpeg_quant_table(10)[0, 0] == 80  # scale 5000/10 = 500%: 16 * 5
    assert jpeg_quant_table(100).max() == 1  # quality 100: every step 1
    assert jpeg_quant_table(1).max() == 255


def test_jpeg_quality_100_is_nearly_lossless_and_10_is_not(grey):
    x = torch.round(grey * 255) / 255
    assert (jpeg_compress(x, 100) - x).abs().max() <= 2 / 255
    assert (jpeg_compress(x, 10) - x).abs().mean() > 10 / 255


def test_jpeg_keeps_a_constant_image(grey):
    x = torch.full_like(grey, 128 / 255)
    torch.testing.assert_close(jpeg_compress(x, 10), x, rtol=0, atol=0)


def test_jpeg_removes_a_small_high_frequency_pattern_and_keeps_low_frequencies():
    from landscape.defenses import _dct_matrix

    c = _dct_matrix()
    basis = torch.outer(c[7], c[7]) * 8  # the (7, 7) DCT basis image, values in about [-1, 1]
    base = torch.full((1, 1, 8, 8), 128 / 255)
    step = float(jpeg_quant_table(10)[7, 7])  # 255 at quality 10
    poisoned = base + (0.3 * step / 8 / 255) * basis.float()[None, None]  # coefficient 0.3 step: rounds to 0
    torch.testing.assert_close(jpeg_compress(poisoned, 10), base, rtol=0, atol=0)
    # a strong low-frequency (0, 1) pattern survives
    low = base + (40 / 255) * (torch.outer(c[0], c[1]) * 8).float()[None, None] / 1.5
    assert (jpeg_compress(low, 10) - base).abs().max() > 10 / 255


@pytest.mark.parametrize("quality", [10, 50, 90])
def test_jpeg_agrees_with_pil(quality, rgb):
    Image = pytest.importorskip("PIL.Image")

    def pil(x):
        out = []
        for im in x:
            a = np.round(im.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
            img = Image.fromarray(a[..., 0], "L") if a.shape[2] == 1 else Image.fromarray(a, "RGB")
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=quality)
            r = np.asarray(Image.open(io.BytesIO(buf.getvalue()))).astype(np.float32) / 255
            out.append(r[None] if r.ndim == 2 else r.transpose(2, 0, 1))
        return torch.from_numpy(np.stack(out))

    digits = load_data(DataSpec()).train.x[:300]
    for x, mean_tol in ((digits, 1.0 / 255), (rgb, 2.0 / 255)):
        ours, ref = jpeg_compress(x, quality), pil(x)
        assert (ours - ref).abs().mean() < mean_tol  # float vs integer DCT: rare boundary roundings only
        # and the distortion w.r.t. the input is the same amount as PIL's
        assert (ours - x).abs().mean() == pytest.approx(float((ref - x).abs().mean()), rel=0.1, abs=0.5 / 255)


# ------------------------------------------------------------------------------------------------ grayscale, bdr, blur


def test_grayscale_is_a_noop_on_one_channel(grey):
    out = build_defense("grayscale").preprocess(grey)
    assert torch.equal(out, grey)


def test_grayscale_uses_luma_weights_on_rgb(rgb):
    out = build_defense("grayscale").preprocess(rgb)
    luma = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    for c in range(3):
        torch.testing.assert_close(out[:, c], luma, rtol=0, atol=1e-6)


def test_bdr_posterizes_like_pil(grey):
    out = build_defense("bdr").preprocess(grey)
    levels = torch.unique(torch.round(out * 255))
    assert set(levels.tolist()) <= {0.0, 64.0, 128.0, 192.0}
    v = torch.round(grey * 255).to(torch.uint8)
    torch.testing.assert_close(out, (v & 0b11000000).float() / 255, rtol=0, atol=0)
    eight = build_defense("bdr", {"bits": 8}).preprocess(grey)
    torch.testing.assert_close(eight, torch.round(grey * 255) / 255, rtol=0, atol=0)


def test_blur_kernel_and_effect(grey):
    k = gaussian_kernel(3, 0.1)
    assert float(k[1]) == pytest.approx(1.0, abs=1e-12)  # APBench's sigma 0.1 is almost the identity
    torch.testing.assert_close(build_defense("blur").preprocess(grey), grey, rtol=0, atol=1e-6)
    # a huge sigma is a 3x3 box filter (reflect padding), checked in the interior
    box = build_defense("blur", {"sigma": 100.0}).preprocess(grey)
    ref = F.avg_pool2d(grey, 3, stride=1)
    torch.testing.assert_close(box[:, :, 1:-1, 1:-1], ref, rtol=0, atol=1e-4)
    # blurring keeps the mean of a constant image and lowers the total variation
    const = torch.full_like(grey, 0.3)
    torch.testing.assert_close(build_defense("blur", {"sigma": 1.0}).preprocess(const), const)
    b = build_defense("blur", {"sigma": 1.0}).preprocess(grey)
    assert b.diff(dim=3).abs().mean() < grey.diff(dim=3).abs().mean()


def test_blur_kernel_too_large_for_the_images_is_a_spec_error(grey):
    """Reflect padding needs kernel // 2 < min(H, W): on 8x8 images 15 is the largest kernel, 17 is refused."""
    assert build_defense("blur", {"kernel": 15, "sigma": 1.0}).preprocess(grey).shape == grey.shape
    with pytest.raises(SpecError, match=r"kernel = 17 .*8x8.*largest valid kernel is 15"):
        build_defense("blur", {"kernel": 17}).preprocess(grey)
    with pytest.raises(SpecError, match=r"kernel = 31 .*3x16.*largest valid kernel is 5"):
        build_defense("blur", {"kernel": 31}).preprocess(torch.rand(2, 1, 3, 16))


# ------------------------------------------------------------------------------------------------ cutout, mixup, AT


def test_cutout_zeroes_one_square_per_image_and_nothing_else(grey, tiny_model):
    x = grey + 0.01  # no zeros in the input, so zeros mark the hole
    y = torch.arange(16) % 4
    out, target = _batch("cutout", tiny_model, x.clamp(0, 1), y)
    assert torch.equal(target, y)
    side = build_defense("cutout").square_side(8, 8)
    assert side == 4
    for i in range(len(x)):
        hole = out[i, 0] == 0
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        assert 1 <= len(rows) <= side and 1 <= len(cols) <= side
        # the hole is a full rectangle (a clipped square) and everything outside it is unchanged
        box = torch.zeros_like(hole)
        box[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = True
        assert torch.equal(hole, box)
        assert torch.equal(out[i, 0][~hole], x.clamp(0, 1)[i, 0][~hole])
    # over many draws, interior squares have the full side
    many, _ = _batch("cutout", tiny_model, torch.ones(256, 1, 8, 8), torch.zeros(256, dtype=torch.long))
    assert int((many == 0).sum((1, 2, 3)).max()) == side * side


def test_mixup_mixes_images_and_labels_consistently(grey, tiny_model):
    y = torch.arange(16) % 4
    out, target = _batch("mixup", tiny_model, grey, y)
    assert target.shape == (16, 4) and target.dtype == grey.dtype
    torch.testing.assert_close(target.sum(1), torch.ones(16))
    # each output is lam * x_i + (1 - lam) * x_j for some partner j, with the same lam mixing the labels
    onehot = F.one_hot(y, 4).float()
    for i in range(16):
        found = False
        for j in range(16):
            d = grey[i] - grey[j]
            if float(d.abs().max()) == 0:
                continue
            lam = float(((out[i] - grey[j]) * d).sum() / (d * d).sum())  # least squares
            if 0 <= lam <= 1 and torch.allclose(out[i], lam * grey[i] + (1 - lam) * grey[j], atol=1e-5):
                found = torch.allclose(target[i], lam * onehot[i] + (1 - lam) * onehot[j], atol=1e-5)
                break
        assert found, i
    # with a tiny alpha lam is almost 0 or 1: nearly the original image or the partner's
    tiny = build_defense("mixup", {"alpha": 1e-3}, num_classes=4)
    _, t = tiny.transform(tiny_model, grey, y, torch.Generator().manual_seed(0))
    assert float(t.max(1).values.min()) > 0.99


def test_mixup_target_trains_with_cross_entropy(grey, tiny_model):
    y = torch.arange(16) % 4
    out, target = _batch("mixup", tiny_model, grey, y)
    logits = tiny_model(out)
    loss = F.cross_entropy(logits, target)
    assert target.shape == (16, 4) and torch.allclose(target.sum(1), torch.ones(16))  # soft labels, one per image
    assert torch.isfinite(loss) and torch.allclose(loss, -(target * F.log_softmax(logits, 1)).sum(1).mean())


def test_pgd_stays_in_budget_and_raises_the_loss(tiny_splits):
    model = build_model("linear", tiny_splits.image_shape, tiny_splits.num_classes, seed=0)
    train(model, tiny_splits.train, tiny_splits.test, TrainSpec(epochs=10, batch_size=8))
    x, y = tiny_splits.test.x, tiny_splits.test.y
    eps = 16 / 255
    adv = pgd_linf(model, x, y, eps=eps, steps=10, step=eps / 4, random_start=True,
                   generator=torch.Generator().manual_seed(0))
    assert (adv - x).abs().max() <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        clean, attacked = F.cross_entropy(model(x), y), F.cross_entropy(model(adv), y)
    assert attacked > 2 * clean
    # random noise of the same size raises it far less
    noise = (x + eps * torch.sign(torch.randn(x.shape, generator=torch.Generator().manual_seed(1)))).clamp(0, 1)
    with torch.no_grad():
        assert F.cross_entropy(model(noise), y) - clean < 0.5 * (attacked - clean)


def test_adversarial_training_respects_eps_and_keeps_labels_and_mode(grey, tiny_model):
    y = torch.arange(16) % 4
    tiny_model.train()
    d = build_defense("at", {"eps": 4 / 255, "steps": 3})
    out, target = d.transform(tiny_model, grey, y, torch.Generator().manual_seed(0))
    assert torch.equal(target, y)
    assert (out - grey).abs().max() <= 4 / 255 + 1e-6
    assert not torch.equal(out, grey)
    assert tiny_model.training  # mode restored


@pytest.mark.parametrize("name", ["cutout", "mixup", "at", "jpeg"])
def test_defended_training_runs_and_is_deterministic(name, tiny_splits):
    spec = DefenseSpec.parse(name if name != "at" else "at:eps=16/255,steps=2")
    pre, batch = prepare_defense(spec, tiny_splits.num_classes)
    train_set = tiny_splits.train.with_images(pre(tiny_splits.train.x))
    runs = []
    for _ in range(2):
        model = build_model("cnn", tiny_splits.image_shape, tiny_splits.num_classes, seed=0)
        runs.append(train(model, train_set, tiny_splits.test, TrainSpec(epochs=2, batch_size=16),
                          batch_transform=batch))
    np.testing.assert_array_equal(runs[0].history["train_loss"], runs[1].history["train_loss"])
    plain = train(build_model("cnn", tiny_splits.image_shape, tiny_splits.num_classes, seed=0), tiny_splits.train,
                  tiny_splits.test, TrainSpec(epochs=2, batch_size=16))
    assert not np.array_equal(plain.history["train_loss"], runs[0].history["train_loss"])  # the defense acted


# ------------------------------------------------------------------------------------------------ cache keys


def test_experiment_spec_defense_field_keeps_old_keys_and_round_trips():
    from landscape.config import ExperimentSpec

    plain = ExperimentSpec()
    assert "defense" not in plain.to_dict()  # default "none": the key is the one from before the field existed
    assert plain.replace(defense=DefenseSpec()).key() == plain.key()
    jpeg = plain.replace(defense=DefenseSpec("jpeg"))
    assert jpeg.key() != plain.key() != plain.replace(defense=DefenseSpec.parse("jpeg:quality=30")).key()
    assert ExperimentSpec.from_dict(jpeg.to_dict()) == jpeg
    assert ExperimentSpec.from_dict(plain.to_dict()) == plain


def test_get_training_applies_the_defense_and_keys_it(store):
    from landscape.experiment import get_training

    data, model, spec = DataSpec(n_train=60, n_test=30), ModelSpec("linear"), TrainSpec(epochs=1, batch_size=20)
    plain = get_training(data, model, spec, store=store)
    none = get_training(data, model, spec, store=store, defense=DefenseSpec())
    jpeg = get_training(data, model, spec, store=store, defense=DefenseSpec("jpeg"))
    assert len(store.keys("train")) == 2  # "none" is the plain run; jpeg is its own entry
    np.testing.assert_array_equal(plain.history["train_loss"], none.history["train_loss"])
    assert not np.array_equal(plain.history["train_loss"], jpeg.history["train_loss"])


def test_at_below_the_poisons_linf_eps_warns_naming_both(store):
    """AT's default 8/255 cannot undo a 64/255 L-inf poison (digits' budget): setting up that run says so."""
    import warnings

    from landscape.config import PoisonSpec
    from landscape.experiment import get_training

    data, model, spec = DataSpec(n_train=60, n_test=30), ModelSpec("linear"), TrainSpec(epochs=1, batch_size=20)
    with pytest.warns(UserWarning, match=r"'at' eps 8/255 is below the poison's L-inf eps 64/255 \(random\)"):
        get_training(data, model, spec, PoisonSpec("random"), store=store, defense=DefenseSpec.parse("at:steps=1"))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*is below the poison's")
        get_training(data, model, spec, PoisonSpec("random"), store=store,
                     defense=DefenseSpec.parse("at:eps=64/255,steps=1"))
        get_training(data, model, spec, PoisonSpec("ops"), store=store, defense=DefenseSpec.parse("at:steps=1"))


# ---------------------------------------------------------------------------------------- oracles from mutation testing


def test_jpeg_at_quality_100_returns_every_neutral_grey_exactly():
    """JFIF: R = G = B = g gives Cb = Cr = 128 exactly, and at quality 100 every quantiser step is 1, so a constant
    grey image survives the level shift, DCT, 4:2:0 chroma path and colour conversion unchanged."""
    g = torch.arange(256, dtype=torch.float32) / 255
    x = g[:, None, None, None].expand(256, 3, 16, 16).contiguous()
    torch.testing.assert_close(jpeg_compress(x, 100), x, rtol=0, atol=1e-6)


def test_cutout_centres_are_uniform_over_the_image():
    """The square is centred on a uniform pixel and clipped (DeVries & Taylor's code): row r is covered when the
    centre row c has c - side // 2 <= r < c - side // 2 + side, so P(row r) = #{such c} / H (closed form)."""
    n, h, side = 4000, 8, 4
    out, _ = _batch("cutout", None, torch.ones(n, 1, h, h), torch.zeros(n, dtype=torch.long))
    covered = (out[:, 0] == 0).any(2).double().mean(0)  # (H,): fraction of images whose hole covers row r
    expected = torch.tensor([sum(c - side // 2 <= r < c - side // 2 + side for c in range(h)) / h for r in range(h)],
                            dtype=torch.float64)
    torch.testing.assert_close(covered, expected, rtol=0, atol=0.03)


def test_mixup_draws_one_lambda_per_sample():
    """kornia's RandomMixUpV2 (APBench) draws lam per sample: with one class per image, target[i, y_i] is lam_i
    (or 1 where the partner is the image itself), and the lams differ across the batch."""
    n = 16
    x = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.arange(n)
    mix = build_defense("mixup", num_classes=n)
    _, target = mix.transform(None, x, y, torch.Generator().manual_seed(0))
    lams = target[torch.arange(n), y]
    assert len({round(float(v), 6) for v in lams if v < 1}) > n // 2


def test_adversarial_training_takes_steps_of_eps_over_4_from_the_clean_image(grey, tiny_model):
    """APBench's AT default step is eps / 4; without a random start PGD starts at x, so one step is exactly
    clamp(x + eps/4 sign(grad_x CE)) (the input gradient in eval mode, computed here directly)."""
    x = 0.25 + 0.5 * grey  # nothing clips
    y = torch.arange(16) % 4
    eps = 8 / 255
    out, _ = build_defense("at", {"eps": eps, "steps": 1, "random_start": False}).transform(
        tiny_model, x, y, torch.Generator().manual_seed(0))
    tiny_model.eval()
    xi = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(tiny_model(xi), y), xi)
    torch.testing.assert_close(out, x + eps / 4 * grad.sign(), rtol=0, atol=1e-6)


def test_pgd_random_start_is_uniform_over_the_whole_ball(tiny_model):
    """Madry et al.'s random start: x + U(-eps, eps) per pixel (with no step taken, it is what PGD returns)."""
    x = torch.full((64, 1, 8, 8), 0.5)
    eps = 0.1
    start = pgd_linf(tiny_model, x, torch.zeros(64, dtype=torch.long), eps=eps, steps=0, step=0.0, random_start=True,
                     generator=torch.Generator().manual_seed(0)) - x
    assert float(start.abs().max()) <= eps
    assert float(start.min()) < -0.9 * eps and float(start.max()) > 0.9 * eps
    assert abs(float(start.mean())) < 0.05 * eps and abs(float((start < 0).double().mean()) - 0.5) < 0.05


def test_gaussian_kernel_is_the_normalised_density_of_its_sigma():
    """Taps exp(-t^2 / (2 sigma^2)) at t = -2..2, normalised (torchvision's `_get_gaussian_kernel1d`), by hand; and a
    blur of a one-pixel impulse with sigma 1 has the outer product of those taps around it."""
    for sigma in (0.5, 1.0, 2.0):
        t = np.arange(-2.0, 3.0)
        taps = np.exp(-t ** 2 / (2 * sigma ** 2))
        np.testing.assert_allclose(gaussian_kernel(5, sigma, torch.float64).numpy(), taps / taps.sum(), rtol=1e-12)
    k = gaussian_kernel(3, 1.0, torch.float64).numpy()
    e = np.exp(-0.5)
    np.testing.assert_allclose(k, np.array([e, 1.0, e]) / (1 + 2 * e), rtol=1e-12)
    impulse = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    impulse[0, 0, 4, 4] = 1.0
    out = build_defense("blur", {"sigma": 1.0}).preprocess(impulse)
    np.testing.assert_allclose(out[0, 0, 3:6, 3:6].numpy(), np.outer(k, k), rtol=1e-9)
