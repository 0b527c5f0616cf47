"""The optimizer registry and every optimizer: a worked step each, a
registry-driven convergence test, option validation, plugins."""

import warnings

import numpy as np
import pytest

from nnbench import optimizers
from nnbench.errors import ConfigError
from nnbench.optimizers import ScipyStatusWarning
from nnbench.optimizers.base import Stack, stepper


class ByHand:
    """One run driven step by step on a vector ``w`` (updated in place), as the
    training loop drives it: a stack of one, or the optimizer's own step.
    ``update(fun)`` takes a single-run objective, ``fun(w) -> (loss, grad)``."""

    def __init__(self, opt, w):
        self.rows = w[None]  # a view: the steps update w
        self.stepper = stepper([opt])
        self.state = self.stepper.start(self.rows)

    def update(self, fun):
        def stacked(thetas):
            loss, grad = fun(thetas[0])
            return np.array([loss]), grad[None]

        vectorised = isinstance(self.stepper, Stack)
        return self.stepper.update(stacked if vectorised else fun, self.rows, self.state)[0]


class Quadratic:
    """f(w) = 0.5 * ||w||^2, so grad f(w) = w; records where it was evaluated."""

    def __init__(self):
        self.points = []

    def __call__(self, w):
        self.points.append(w.copy())
        return 0.5 * float(w @ w), w.copy()


def steps(name, options, n_steps, w0=(1.0, -2.0)):
    w = np.array(w0)
    fun = Quadratic()
    run = ByHand(optimizers.make(name, options), w)
    for _ in range(n_steps):
        run.update(fun)
    return w, fun, run.stepper.member_state(run.state, 0)


# -- worked single steps ---------------------------------------------------------------
# Each starts at w = [1, -2] on f(w) = 0.5 ||w||^2, whose gradient is w itself.


def test_gd_step_and_decay():
    w, _, state = steps("gd", {"learning_rate": 0.3, "learning_rate_decay": 0.5}, 2)
    # step 1: w = [1, -2] - 0.3 * [1, -2] = [0.7, -1.4]; lr -> 0.15
    # step 2: w = [0.7, -1.4] - 0.15 * [0.7, -1.4] = [0.595, -1.19]; lr -> 0.075
    np.testing.assert_allclose(w, [0.595, -1.19])
    assert state["lr"] == pytest.approx(0.075)


def test_blog_momentum_follows_its_look_ahead_formula():
    w, fun, state = steps("momentum", {"learning_rate": 0.1, "momentum": 0.9}, 2)
    # step 1: jump = 0.9 * 0 = 0; corr = 0.1 * grad([1, -2]) = [0.1, -0.2]
    #         w = [0.9, -1.8]; step = [0.1, -0.2]
    # step 2: jump = 0.9 * [0.1, -0.2] = [0.09, -0.18]; w - jump = [0.81, -1.62]
    #         the gradient is taken THERE: corr = 0.1 * [0.81, -1.62] = [0.081, -0.162]
    #         w = [0.729, -1.458]; step = jump + corr = [0.171, -0.342]
    np.testing.assert_allclose(fun.points[1], [0.81, -1.62])
    np.testing.assert_allclose(w, [0.729, -1.458])
    np.testing.assert_allclose(state["step"], [0.171, -0.342])


def test_momentum_decays_learning_rate_and_momentum():
    _, _, state = steps(
        "momentum",
        {"learning_rate": 0.1, "momentum": 0.9, "learning_rate_decay": 0.5, "momentum_decay": 0.5},
        2,
    )
    assert state["lr"] == pytest.approx(0.025) and state["mu"] == pytest.approx(0.225)


def test_classical_heavy_ball_momentum():
    w, fun, _ = steps("momentum", {"learning_rate": 0.1, "momentum": 0.9, "form": "classical"}, 2)
    # v1 = 0.1 * [1, -2] = [0.1, -0.2]; w1 = [0.9, -1.8]
    # v2 = 0.9 * v1 + 0.1 * w1 = [0.09 + 0.09, -0.18 - 0.18] = [0.18, -0.36]
    # w2 = w1 - v2 = [0.72, -1.44]; gradients at the iterates, no look-ahead
    np.testing.assert_allclose(fun.points[1], [0.9, -1.8])
    np.testing.assert_allclose(w, [0.72, -1.44])


def test_nesterov_step():
    w, _, state = steps("nesterov", {"learning_rate": 0.1, "momentum": 0.9}, 1)
    # v = 0.9 * 0 - 0.1 * [1, -2] = [-0.1, 0.2]
    # w = w + 0.9 * v - 0.1 * g = [1 - 0.09 - 0.1, -2 + 0.18 + 0.2] = [0.81, -1.62]
    np.testing.assert_allclose(state["v"], [-0.1, 0.2])
    np.testing.assert_allclose(w, [0.81, -1.62])


def test_rmsprop_step():
    w, _, state = steps("rmsprop", {"learning_rate": 0.01, "decay": 0.9}, 1)
    # ms = 0.9 * 0 + 0.1 * [1, 4] = [0.1, 0.4]; sqrt(ms) = [0.3162, 0.6325]
    # w = w - 0.01 * [1 / 0.3162, -2 / 0.6325] = w - 0.01 * [3.1623, -3.1623]
    np.testing.assert_allclose(state["ms"], [0.1, 0.4])
    np.testing.assert_allclose(w, [1 - 0.01 * np.sqrt(10), -2 + 0.01 * np.sqrt(10)])


def test_rmsprop_blog_preset_is_the_posts_update():
    w, _, state = steps("rmsprop_blog", {"decay": 0.9}, 1)
    # ms starts at 1: ms = 0.9 * 1 + 0.1 * [1, 4] = [1.0, 1.3]
    # no learning rate: w = w - g / sqrt(ms + 1e-8) = [1 - 1/1, -2 + 2/sqrt(1.3)]
    np.testing.assert_allclose(state["ms"], [1.0, 1.3])
    np.testing.assert_allclose(w, [1 - 1 / np.sqrt(1 + 1e-8), -2 + 2 / np.sqrt(1.3 + 1e-8)])


def test_adagrad_step():
    w, _, _ = steps("adagrad", {"learning_rate": 0.1}, 2)
    # step 1: G = [1, 4]; w = w - 0.1 * [1/1, -2/2] = [0.9, -1.9]
    # step 2: G = [1.81, 7.61]; w = [0.9 - 0.1 * 0.9 / sqrt(1.81), -1.9 + 0.1 * 1.9 / sqrt(7.61)]
    np.testing.assert_allclose(
        w, [0.9 - 0.09 / np.sqrt(1.81), -1.9 + 0.19 / np.sqrt(7.61)], rtol=1e-7
    )


def test_adam_step():
    w, _, state = steps("adam", {"learning_rate": 0.1}, 1)
    # m = 0.1 * g = [0.1, -0.2]; v = 0.001 * g^2 = [0.001, 0.004]
    # m_hat = m / 0.1 = [1, -2]; v_hat = v / 0.001 = [1, 4]
    # w = w - 0.1 * [1 / 1, -2 / 2] = [0.9, -1.9]
    np.testing.assert_allclose(w, [0.9, -1.9], rtol=1e-7)
    assert state["t"] == 1


@pytest.mark.parametrize("name", ["cg", "lbfgsb"])
def test_scipy_minimisers_solve_a_quadratic_in_one_step(name):
    w, fun, _ = steps(name, {"mb_maxiter": 5}, 1)
    # one exact line search along -g lands on the minimum of 0.5 ||w||^2
    np.testing.assert_allclose(w, [0, 0], atol=1e-6)
    assert len(fun.points) >= 2  # scipy evaluates as often as it needs


def _rosenbrock(x):
    from scipy import optimize

    return float(optimize.rosen(x)), optimize.rosen_der(x)


def _quartic(x):
    return float(np.sum(x**4)), 4 * x**3


@pytest.mark.parametrize(
    ("name", "method", "fun", "start"),
    [("cg", "CG", _rosenbrock, [0.5] * 4), ("lbfgsb", "L-BFGS-B", _quartic, [1.0, -2.0, 0.5])],
)
def test_scipy_minimisers_run_with_scipys_own_tolerances(name, method, fun, start):
    # Run to convergence, the gradient crosses scipy's gtol (1e-5) slowly on
    # its way down, so a tolerance moved 2x either way changes the end point
    # (checked first): nnbench's step must be scipy's with its defaults, bit
    # for bit, with as many evaluations.
    from scipy import optimize

    start = np.array(start)
    options = {"maxiter": 500}
    want = optimize.minimize(fun, start, jac=True, method=method, options=options)
    for factor in (2.0, 0.5):
        moved = optimize.minimize(
            fun, start, jac=True, method=method, options={**options, "gtol": 1e-5 * factor}
        )
        assert not np.array_equal(moved.x, want.x)  # the case tells the tolerances apart
    calls = []
    opt = optimizers.make(name, {"mb_maxiter": 500})
    w = start.copy()
    ByHand(opt, w).update(lambda x: calls.append(1) or fun(x))
    np.testing.assert_array_equal(w, want.x)
    assert len(calls) == want.nfev


def test_scipy_failure_status_becomes_a_warning_and_a_count():
    opt = optimizers.make("cg", {"mb_maxiter": 10})
    w = np.array([1.0, -2.0])
    state = opt.start(w)

    def wrong_gradient(x):  # the gradient points uphill: the line search fails
        return 0.5 * float(x @ x), -x

    with pytest.warns(ScipyStatusWarning, match="CG status 2"):
        opt.update(wrong_gradient, w, state)
    assert np.all(np.isfinite(w))
    # the optimizer reports it through its diagnostics hook, for the run's record
    diagnostics = opt.diagnostics(state)
    assert diagnostics["n_bad_status"] == 1
    assert "1 of 1 minibatch minimisations ended with a scipy failure" in diagnostics["warning"]
    assert optimizers.make("gd").diagnostics({}) == {}


# -- every registered optimizer learns ---------------------------------------------------

# -- the registry --------------------------------------------------------------------------


def test_builtins_and_the_entry_point_plugin_are_registered():
    names = set(optimizers.available())
    assert {
        "gd",
        "momentum",
        "rmsprop",
        "rmsprop_blog",
        "cg",
        "lbfgsb",
        "nesterov",
        "adagrad",
        "adam",
    } <= names
    assert "signsgd" in names  # from tests/plugin_site, through its entry point


def test_a_broken_plugin_is_reported_not_fatal():
    errors = optimizers.plugin_errors()
    assert "broken" in errors and "broken on purpose" in errors["broken"]
    with pytest.raises(ConfigError, match="failed to load"):
        optimizers.get("broken")


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ConfigError, match="did you mean adam"):
        optimizers.get("adma")
    with pytest.raises(ConfigError, match=r"unknown optimizer 'zzz'.*known: adagrad"):
        optimizers.get("zzz")


@pytest.mark.parametrize(
    "name, options, match",
    [
        ("adam", {"lr": 0.1}, "unknown option lr; it accepts learning_rate"),
        ("gd", {"learning_rate": "fast"}, "learning_rate='fast' is invalid; it takes a number"),
        ("gd", {"learning_rate": -0.1}, "> 0"),
        ("gd", {"learning_rate": True}, "is invalid"),
        ("gd", {"learning_rate": float("nan")}, "is invalid"),
        ("cg", {"mb_maxiter": 2.5}, "an integer >= 1"),
        ("cg", {"mb_maxiter": 0}, "an integer >= 1"),
        ("momentum", {"form": "nesterov"}, "one of blog, classical"),
        ("rmsprop", {"decay": 1.5}, "< 1"),
        # settings that give NaN or infinite steps are refused, not run
        ("adam", {"beta1": 1.0}, "beta1=1.0 is invalid; it takes a number >= 0 and < 1"),
        ("adam", {"beta2": 1}, "beta2=1 is invalid"),
        ("rmsprop", {"decay": 1.0}, "decay=1.0 is invalid"),
        ("rmsprop", {"eps": 0.0}, "eps=0.0 is invalid; it takes a number > 0"),
        ("adagrad", {"eps": 0}, "> 0"),
        ("adam", {"eps": 0.0}, "> 0"),
    ],
)
def test_bad_options_name_what_is_accepted(name, options, match):
    with pytest.raises(ConfigError, match=match):
        optimizers.make(name, options)


def test_config_errors_are_value_errors():
    with pytest.raises(ValueError):
        optimizers.make("gd", {"learning_rate": 0})


def test_labels_are_stable_and_name_the_given_options():
    assert optimizers.make("adam").label == "adam"
    # options equal to their defaults are left out: the label names the computation
    opt = optimizers.make("adam", {"learning_rate": 0.001, "beta1": 0.8})
    assert opt.label == "adam[beta1=0.8]"
    assert optimizers.make("momentum", {"form": "classical"}).label == "momentum[form=classical]"
    # 1 and 1.0 are one value of a float option
    assert optimizers.make("gd", {"learning_rate": 1}).label == "gd[learning_rate=1.0]"
    assert optimizers.make("gd", {"learning_rate": 1.0}).label == "gd[learning_rate=1.0]"


def test_integer_values_are_accepted_for_float_options():
    assert optimizers.make("gd", {"learning_rate": 1}).config["learning_rate"] == 1.0


def test_register_rejects_non_optimizers():
    with pytest.raises(TypeError):
        optimizers.register(dict)


def test_no_warnings_from_a_plain_step():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        steps("adam", {}, 3)


def test_the_posts_momentum_and_nesterov_take_gradients_at_the_same_points():
    """momentum's look-ahead form is Nesterov's method: the same gradient points."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 4))

    def points(name):
        visited = []

        def fun(w):  # a least-squares problem, so the gradient depends on w
            visited.append(w.copy())
            r = A @ w - 1.0
            return 0.5 * float(r @ r), A.T @ r

        w = np.zeros(4)
        run = ByHand(optimizers.make(name, {"learning_rate": 0.05, "momentum": 0.9}), w)
        for _ in range(30):
            run.update(fun)
        return np.array(visited)

    np.testing.assert_allclose(points("momentum"), points("nesterov"), rtol=1e-12, atol=1e-12)
    classical = optimizers.make("momentum", {"learning_rate": 0.05, "form": "classical"})
    assert classical.label != optimizers.make("nesterov").label


@pytest.mark.parametrize("name", sorted(optimizers.available()))
def test_default_search_spaces_lie_inside_the_options_ranges(name):
    """Every point a default search space can give is a valid option value."""
    for _key, option in optimizers.get(name).options.items():
        if option.search is None:
            continue
        for u in (0.0, 0.5, 0.999999):
            option.convert(option.search.value(u))


def test_schedules_are_applied_by_the_base_class_for_every_optimizer():
    from nnbench.optimizers import Optimizer, Option

    class Decaying(Optimizer):
        name = "decaying"
        options = {
            "step": Option(1.0, "step", kind=float),
            "factor": Option(0.5, "decay", kind=float),
        }
        schedules = {"s": ("step", "factor")}

        def step(self, fun, theta, state):
            theta -= state["s"]
            return 0.0

    opt = Decaying()
    w = np.zeros(1)
    state = opt.start(w)
    for _ in range(3):
        opt.update(lambda x: (0.0, x), w, state)
    # steps of 1, 0.5, 0.25; the entry is now 0.125
    assert w[0] == pytest.approx(-1.75) and state["s"] == pytest.approx(0.125)
