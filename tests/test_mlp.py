"""The network: gradients, agreement with the post's per-row formulas,
flat-vector views, stability, dtypes and initialisation."""

import itertools

import numpy as np
import pytest
from scipy.special import expit

from nnbench.layout import Layout
from nnbench.mlp import MLP

ACTIVATIONS = ["sigmoid", "tanh", "relu"]
OUTPUTS = ["sigmoid", "softmax"]
DEPTHS = [(6,), (6, 5), (6, 5, 4)]


def random_problem(rng, n_in=7, n_out=3, n=9):
    X = rng.normal(size=(n, n_in))
    y = rng.integers(0, n_out, size=n)
    return X, y


def central_difference(f, theta, eps=1e-6):
    grad = np.empty_like(theta)
    for i in range(len(theta)):
        old = theta[i]
        theta[i] = old + eps
        up = f(theta)
        theta[i] = old - eps
        down = f(theta)
        theta[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize("hidden", DEPTHS, ids=lambda h: f"{len(h)}hidden")
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_gradient_matches_finite_differences(rng, activation, output, hidden, l2):
    model = MLP((7, *hidden, 3), activation, output, l2=l2)
    # Random weights and biases (not the init): nonzero biases keep ReLU
    # units off their kink, where the derivative is undefined.
    theta = rng.normal(0, 0.7, size=model.n_params)
    X, y = random_problem(rng)
    _, grad = model.loss_and_grad(theta, X, y)
    numeric = central_difference(lambda t: model.loss_and_grad(t, X, y)[0], theta.copy())
    rel = np.linalg.norm(grad - numeric) / np.linalg.norm(grad + numeric)
    assert rel < 1e-6


@pytest.mark.parametrize("output", OUTPUTS)
def test_no_hidden_layer_is_a_linear_classifier(rng, output):
    model = MLP((7, 3), output=output)
    theta = rng.normal(0, 0.7, size=model.n_params)
    X, y = random_problem(rng)
    loss, grad = model.loss_and_grad(theta, X, y)
    numeric = central_difference(lambda t: model.loss_and_grad(t, X, y)[0], theta.copy())
    assert np.linalg.norm(grad - numeric) / np.linalg.norm(grad + numeric) < 1e-6
    assert model.evaluate(theta, X, y)[0] == pytest.approx(loss, rel=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("k", [1, 3])
def test_the_training_pass_equals_the_checked_one(rng, dtype, k):
    """The training loop's pass takes K stacked vectors and skips the input
    checks; every row's numbers are those of the checked pass of that row alone."""
    model = MLP((7, 6, 5, 3), dtype=dtype)
    thetas = np.stack([model.init(rng) for _ in range(k)])
    X, y = random_problem(rng, n=40)
    X = X.astype(dtype)
    grads = np.empty_like(thetas)
    losses = model.losses_and_grads(thetas, X, y, grads)
    for theta, fast_loss, fast_grad in zip(thetas, losses, grads):
        loss, grad = model.loss_and_grad(theta, X, y)
        assert fast_loss == loss
        np.testing.assert_array_equal(fast_grad, grad)


def per_row_reference(theta, sizes, X, y, activation, output):
    """The post's formulas, one row at a time, with the bias column of ones
    inserted at position 0: loss = mean over rows of the summed cost, grad the
    mean of the per-row outer products of deltas and activations."""
    f = {"sigmoid": expit, "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0)}[activation]
    fprime = {
        "sigmoid": lambda a: a * (1 - a),
        "tanh": lambda a: 1 - a**2,
        "relu": lambda a: (a > 0).astype(float),
    }[activation]
    mats, start = [], 0
    for n_in, n_out in itertools.pairwise(sizes):
        end = start + (n_in + 1) * n_out
        mats.append(theta[start:end].reshape(n_in + 1, n_out))
        start = end
    loss, grads = 0.0, [np.zeros_like(m) for m in mats]
    for row, label in zip(X, y):
        acts = [np.append(1.0, row)]
        for i, W in enumerate(mats):
            z = acts[-1] @ W
            if i < len(mats) - 1:
                acts.append(np.append(1.0, f(z)))
        target = np.eye(sizes[-1])[label]
        if output == "sigmoid":
            h = expit(z)
            loss += np.sum(-target * np.log(h) - (1 - target) * np.log(1 - h))
        else:
            h = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            loss -= np.log(h[label])
        delta = h - target
        for i in range(len(mats) - 1, -1, -1):
            grads[i] += np.outer(acts[i], delta)
            if i:
                delta = (mats[i] @ delta)[1:] * fprime(acts[i][1:])
    n = len(X)
    return loss / n, np.concatenate([g.ravel() for g in grads]) / n


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_batch_equals_per_row_formulas(rng, activation, output):
    sizes = (7, 6, 5, 3)
    model = MLP(sizes, activation, output)
    # Moderate weights: the per-row reference takes log(h) naively, as the post did.
    theta = rng.normal(0, 0.3, size=model.n_params)
    X, y = random_problem(rng, n=20)
    loss, grad = model.loss_and_grad(theta, X, y)
    ref_loss, ref_grad = per_row_reference(theta, sizes, X, y, activation, output)
    assert abs(loss - ref_loss) < 1e-10
    np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-10)


def test_views_share_memory_with_the_flat_vector():
    layout = Layout((5, 4, 3))
    theta = np.zeros(layout.n_params)
    weights, biases = layout.weights(theta), layout.biases(theta)
    assert [w.shape for w in weights] == [(5, 4), (4, 3)]
    assert [b.shape for b in biases] == [(4,), (3,)]
    theta += 1.5  # in place
    assert all(np.all(w == 1.5) for w in weights)
    theta[...] = np.arange(layout.n_params)  # assignment into the same memory
    assert biases[0].tolist() == [0, 1, 2, 3]  # bias row comes first, as in the post
    assert weights[0][0].tolist() == [4, 5, 6, 7]
    weights[1][...] = -1  # and writes through a view reach the vector
    assert np.count_nonzero(theta == -1) == 12
    assert all(np.shares_memory(v, theta) for v in weights + biases)


def test_layout_rejects_a_vector_of_the_wrong_length():
    with pytest.raises(ValueError, match="shape"):
        Layout((5, 4, 3)).blocks(np.zeros(3))


def test_no_overflow_or_log0_at_huge_preactivations(rng):
    for output in OUTPUTS:
        model = MLP((7, 6, 3), "sigmoid", output)
        theta = rng.normal(0, 1000, size=model.n_params)
        X, y = random_problem(rng)
        # Underflow to 0 is harmless; overflow, log(0) and inf - inf are not.
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            loss, grad = model.loss_and_grad(theta, X, y)
            cost, _ = model.evaluate(theta, X, y)
        assert np.isfinite(loss) and np.all(np.isfinite(grad)) and np.isfinite(cost)
        assert loss > 100  # confidently wrong outputs cost a lot, not inf


@pytest.mark.parametrize("output", OUTPUTS)
def test_float32_agrees_with_float64(rng, output):
    m64 = MLP((7, 6, 3), output=output, dtype="float64")
    m32 = MLP((7, 6, 3), output=output, dtype="float32")
    theta = m64.init(rng)
    X, y = random_problem(rng, n=50)
    l64, g64 = m64.loss_and_grad(theta, X, y)
    l32, g32 = m32.loss_and_grad(theta.astype(np.float32), X.astype(np.float32), y)
    assert g32.dtype == np.float32
    assert abs(l32 - l64) < 1e-5 * abs(l64)
    np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-5)


def test_evaluate_matches_loss_and_grad(rng):
    model = MLP((7, 5, 3), l2=0.1)
    theta = model.init(rng)
    X, y = random_problem(rng, n=30)
    cost, accuracy = model.evaluate(theta, X, y)
    assert cost == pytest.approx(model.loss_and_grad(theta, X, y)[0], rel=1e-12)
    assert accuracy == np.mean(model.predict(theta, X) == y)


def test_blog_initialisation_range_covers_the_bias_row(rng):
    model = MLP((784, 25, 10))
    theta = model.init(rng, "blog")
    for block in model.layout.blocks(theta):
        rows, cols = block.shape
        gap = 4 * np.sqrt(6 / (rows + cols))
        assert np.abs(block).max() <= gap
        assert np.abs(block).max() > 0.95 * gap  # the whole range is used
        assert np.abs(block[0]).max() > 0  # biases drawn too


def test_glorot_and_he_have_zero_biases_and_their_scales(rng):
    model = MLP((400, 300, 10), activation="relu")
    glorot = model.init(rng, "glorot")
    he = model.init(rng, "he")
    for theta in (glorot, he):
        assert all(np.all(b == 0) for b in model.layout.biases(theta))
    w_glorot = model.layout.weights(glorot)[0]
    assert np.abs(w_glorot).max() <= np.sqrt(6 / 700)
    assert model.layout.weights(he)[0].std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)


def test_same_generator_seed_gives_the_same_weights():
    model = MLP((10, 4, 3))
    a = model.init(np.random.default_rng(7))
    b = model.init(np.random.default_rng(7))
    c = model.init(np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "swish"}, "activation"),
        ({"output": "linear"}, "output"),
        ({"l2": -1.0}, "l2"),
        ({"dtype": "float16"}, "dtype"),
    ],
)
def test_bad_model_settings_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP((4, 3, 2), **kwargs)


def test_wrong_input_width_is_a_clear_error(rng):
    model = MLP((7, 5, 3))
    with pytest.raises(ValueError, match=r"shape \(n_samples, 7\)"):
        model.loss_and_grad(model.init(rng), np.zeros((4, 6)), np.zeros(4, dtype=int))


@pytest.mark.parametrize(
    "y, match",
    [
        (np.array([0, 1, 3, 2]), r"class indices in \[0, 3\)"),
        (np.array([0, 1, -1, 2]), r"class indices in \[0, 3\)"),
        (np.array([0, 1, 2]), "4 integer class indices"),
        (np.array([0.0, 1.0, 2.0, 1.0]), "4 integer class indices"),
    ],
    ids=["too-large", "negative", "too-few", "floats"],
)
def test_bad_labels_are_a_clear_error(rng, y, match):
    """A negative label would otherwise pick a class from the end, silently."""
    model = MLP((7, 5, 3))
    theta, X = model.init(rng), np.zeros((4, 7))
    with pytest.raises(ValueError, match=match):
        model.loss_and_grad(theta, X, y)
    with pytest.raises(ValueError, match=match):
        model.evaluate(theta, X, y)
