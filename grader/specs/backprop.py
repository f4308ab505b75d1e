"""Hidden tests for 03_backprop (solutions/03_backprop/backprop.ipynb).

``Value`` (the scalar autograd engine) is driven by plain-data expressions (see
``course_utils.expressions``): random ones with forks, every operator including the
reflected ones (``2 * v``, ``1 - v``, ``2 / v``), relu at exactly 0 (gradient 0), an
unused leaf (gradient 0), one leaf used many times, and a chain 150 nodes deep.  The
driver compares every node's ``data`` and every leaf's ``grad``.

Each layer is one exercise with two names, ``(forward, backward)``, graded by the
generic ``forward_backward`` driver (forward then backward in the same process, so the
cache never leaves it) in two parts: forward-only cases (part ``forward``) and cases with
an upstream gradient (part ``backward``).  Shapes include N=1, higher-dimensional inputs
for the affine layer (N, d_1, ..., d_k), exact zeros for relu (gradient 0 at 0, as the notebook states) and inputs of +-1000 for
the sigmoid.  The losses get large scores (stability), equal scores, and integer scores
where SVM margins are exactly 0 (the notebook's ``> 0`` convention).
``numerical_gradient`` is driven with functions built in the driver; the check includes
that ``x`` is restored exactly and that the given ``h`` is used.  ``TwoLayerNet`` is
constructed with ``rng=np.random.default_rng(seed)``: the initial parameters follow the
order the notebook states; loss and gradients are also compared with given parameters.  It is
graded with the reference layers and softmax loss in place of the student's (``uses``), so a
mistake in a layer costs its own exercise only.

Rules (stated in each docstring and checked by the visible self-checks): no Python loops
in the vectorised functions, no torch in any numpy exercise, and no course_utils in the
two gradient-checking functions.
"""

from __future__ import annotations

import numpy as np

from course_utils.expressions import random_expression
from grader.spec import Case, Exercise, Forbid, NoLoops, Tol

ASSIGNMENT = "03_backprop"

NO_TORCH = Forbid(("torch",))
NO_TORCH_NO_COURSE = Forbid(("torch", "course_utils"))
# The course ships these layers for later assignments; here they are the exercise.
NO_TORCH_NO_LAYERS = Forbid(("torch", "course_utils.layers"))


# --- Value ------------------------------------------------------------------------


def _value_cases(rng: np.random.Generator) -> list[Case]:
    chain_ops = []
    for k in range(150):  # a deep chain: tanh and affine steps, each on the previous node
        chain_ops.append(["tanh", k] if k % 2 == 0 else ["mulc", k, 1.5])
    return [
        Case(random_expression(rng, num_leaves=2, num_ops=4), label="two leaves, four operations"),
        Case(random_expression(rng, num_leaves=3, num_ops=12), label="random expression, 3 leaves, 12 operations"),
        Case(random_expression(rng, num_leaves=3, num_ops=20), label="random expression, 3 leaves, 20 operations"),
        Case(random_expression(rng, num_leaves=5, num_ops=40), label="random expression, 5 leaves, 40 operations"),
        Case(random_expression(rng, num_leaves=1, num_ops=15),
             label="one leaf used by many operations (gradients add up at forks)"),
        Case({"leaves": [1.5, -0.5],
              "ops": [["rmul", 2.0, 0], ["rsub", 1.0, 1], ["rdiv", 2.0, 0], ["radd", 3.0, 1],
                      ["add", 2, 3], ["add", 6, 4], ["add", 7, 5]]},
             label="numbers on the left: 2 * v, 1 - v, 2 / v, 3 + v"),
        Case({"leaves": [0.0, 2.0, -1.0],
              "ops": [["relu", 0], ["relu", 2], ["add", 3, 4], ["mul", 5, 1], ["relu", 1], ["add", 6, 7]]},
             label="relu at exactly 0 and of a negative value"),
        Case({"leaves": [0.7, -1.2, 3.0],
              "ops": [["mul", 0, 1], ["exp", 3], ["subc", 4, 0.5], ["pow", 5, 2]]},
             label="a leaf the output does not depend on (its grad stays 0)"),
        Case({"leaves": [0.9, 2.5],
              "ops": [["pow", 0, 3], ["pow", 1, -1], ["pow", 1, 0.5], ["pow", 1, 1.5], ["div", 2, 3],
                      ["log", 1], ["neg", 7], ["add", 6, 8], ["add", 9, 5], ["sub", 10, 4], ["tanh", 11]]},
             label="powers (3, -1, 0.5, 1.5), log, neg, division, tanh"),
        Case({"leaves": [0.3], "ops": chain_ops}, label="a chain 150 operations deep"),
    ]


# --- layers -------------------------------------------------------------------------


def _affine_inputs(rng, shape, M, scale=1.0):
    D = int(np.prod(shape[1:]))
    return {"x": scale * rng.normal(size=shape), "w": rng.normal(size=(D, M)), "b": rng.normal(size=M)}


AFFINE_SHAPES = [
    ((4, 5), 3, 1.0, "x (4, 5), M=3"),
    ((1, 6), 2, 1.0, "a single example (N=1)"),
    ((3, 2, 4, 2), 5, 1.0, "image-shaped x (N, 2, 4, 2): flatten to D=16"),
    ((2, 3, 5), 1, 1.0, "x (2, 3, 5), a single output (M=1)"),
    ((6, 1), 4, 1.0, "one feature (D=1)"),
    ((5, 7), 6, 1e3, "large inputs (scale 1e3)"),
]


def _affine_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for shape, M, scale, label in AFFINE_SHAPES:
        args = _affine_inputs(rng, shape, M, scale)
        cases.append(Case({"forward": args}, label=f"forward: {label}", part="forward"))
        cases.append(Case({"forward": args, "dout": rng.normal(size=(shape[0], M))},
                          label=f"backward: {label}", part="backward"))
    return cases


def _elementwise_inputs(rng: np.random.Generator) -> list[tuple[np.ndarray, str]]:
    with_zeros = rng.integers(-2, 3, size=(4, 5)).astype(np.float64)
    with_zeros[0, :2] = 0.0
    with_zeros[1, 0] = -0.0
    return [
        (rng.normal(size=(5, 7)), "x (5, 7)"),
        (rng.normal(size=(1, 3)), "a single example (N=1)"),
        (rng.normal(size=(2, 3, 4, 5)), "x of shape (2, 3, 4, 5)"),
        (with_zeros, "integer values with exact zeros (gradient 0 at 0)"),
        (rng.normal(scale=300.0, size=(3, 4)) + np.array([1000.0, -1000.0, 0.0, 5.0]),
         "large inputs, as large as +-1000"),
    ]


def _elementwise_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for x, label in _elementwise_inputs(rng):
        cases.append(Case({"forward": {"x": x}}, label=f"forward: {label}", part="forward"))
        cases.append(Case({"forward": {"x": x}, "dout": rng.normal(size=x.shape)}, label=f"backward: {label}",
                          part="backward"))
    return cases


# --- losses ------------------------------------------------------------------------------


def _loss_cases(rng: np.random.Generator) -> list[Case]:
    def scores(N, C, scale=1.0):
        return {"x": scale * rng.normal(size=(N, C)), "y": rng.integers(0, C, size=N)}

    large = scores(6, 5, scale=300.0)
    large["x"] = large["x"] + 1000.0
    ties = {"x": rng.integers(-2, 3, size=(8, 4)).astype(np.float64), "y": rng.integers(0, 4, size=8)}
    return [
        Case(scores(5, 4), label="N=5, C=4"),
        Case(scores(1, 10), label="a single example (N=1), C=10"),
        Case(scores(12, 2), label="two classes"),
        Case(large, label="large scores (around 1e3, spread 300)"),
        Case({"x": np.zeros((3, 5)), "y": np.array([0, 4, 2])}, label="all scores equal"),
        Case(ties, label="integer scores: many ties (margins of exactly 0)"),
        Case({"x": np.array([[3.0, 2.0, 0.5], [1.0, 1.0, 1.0], [0.0, 1.0, -1.0]]), "y": np.array([0, 1, 1])},
             label="margins of exactly 0, and correct classes that win by more than 1"),
    ]


# --- gradient checking -----------------------------------------------------------------------


def _numerical_gradient_cases(rng: np.random.Generator) -> list[Case]:
    def case(kind, shape, h=None, relu=False):
        x = rng.normal(size=shape)
        if relu:  # keep every entry well away from the kink
            x = np.where(np.abs(x) < 0.1, 0.5, x)
        params = {"a": rng.uniform(0.5, 2.0, size=shape), "b": rng.normal(size=shape)}
        return {"kind": kind, "params": params, "x": x, "h": h}

    return [
        Case(case("quadratic", (3, 4)), label="a quadratic, x (3, 4), default h"),
        Case(case("cubic", (5,)), label="a cubic, x (5,), default h"),
        Case(case("cubic", (2, 3), h=1e-2), label="a cubic with h=1e-2 (the given h must be used)"),
        Case(case("logsumexp", (6,), h=1e-3), label="log-sum-exp with h=1e-3"),
        Case(case("sin", (2, 2, 3)), label="a sum of sines, x (2, 2, 3)"),
        Case(case("relu", (4, 3), h=1e-6), label="a sum of relus away from the kink, h=1e-6"),
        Case(case("quadratic", (1, 1)), label="a single entry, x (1, 1)"),
    ]


def _rel_error_cases(rng: np.random.Generator) -> list[Case]:
    a = rng.normal(size=(4, 5))
    return [
        Case({"a": a, "b": a + 1e-6 * rng.normal(size=(4, 5))}, label="nearly equal arrays (4, 5)"),
        Case({"a": rng.normal(size=7), "b": rng.normal(size=7)}, label="unrelated arrays (7,)"),
        Case({"a": 2.5, "b": 2.4}, label="two Python numbers"),
        Case({"a": np.zeros((2, 3)), "b": np.zeros((2, 3))}, label="both zero everywhere"),
        Case({"a": np.array([1e-12, 3.0, 0.0]), "b": np.array([0.0, 3.0, 1e-9])},
             label="tiny values where the 1e-8 floor matters"),
        Case({"a": np.array([1.0, -2.0]), "b": np.array([-1.0, -2.0])}, label="opposite signs"),
        Case({"a": rng.normal(size=(2, 3, 2)), "b": rng.normal(size=(2, 3, 2))}, label="3-D arrays"),
    ]


# --- TwoLayerNet ----------------------------------------------------------------------------------


def _two_layer_cases(rng: np.random.Generator) -> list[Case]:
    def case(N, D, hidden, C, reg, scale, seed, x_shape=None, given=False):
        X = rng.normal(size=x_shape or (N, D))
        inputs = {"input_dim": D, "hidden_dim": hidden, "num_classes": C, "weight_scale": scale, "reg": reg,
                  "seed": seed, "X": X, "y": rng.integers(0, C, size=N)}
        if given:
            inputs["params"] = {"W1": rng.normal(size=(D, hidden)), "b1": rng.normal(size=hidden),
                                "W2": rng.normal(size=(hidden, C)), "b2": rng.normal(size=C)}
        return inputs

    return [
        Case(case(5, 4, 6, 3, 0.0, 1e-3, 0), label="default-sized weights (1e-3), reg=0"),
        Case(case(8, 10, 7, 4, 0.5, 0.3, 1), label="weight_scale=0.3, reg=0.5"),
        Case(case(1, 6, 5, 3, 0.1, 0.5, 2), label="a single example (N=1)"),
        Case(case(6, 6, 9, 5, 0.2, 0.5, 3, x_shape=(6, 2, 3)), label="inputs of shape (N, 2, 3), input_dim=6"),
        Case(case(7, 5, 8, 4, 0.0, 1.0, 4, given=True), label="given parameters (biases non-zero), reg=0"),
        Case(case(10, 12, 15, 6, 1.3, 1.0, 5, given=True), label="given parameters, reg=1.3"),
    ]


LAYER_OUTPUTS = {"out": Tol(part="forward"), "dx": Tol(part="backward")}

EXERCISES = [
    Exercise(grade_id="test_value", name="Value", cases=_value_cases, driver="value_expression",
             outputs={"data": Tol(rtol=1e-7, atol=1e-9), "leaf_grads": Tol(rtol=1e-7, atol=1e-9)}, rules=(NO_TORCH,),
             hint="each op's _backward adds (local gradient) * out.grad with +=; backward() sets the output's "
                  "grad to 1.0 and calls _backward in reverse topological order; relu's gradient at 0 is 0; "
                  "__rsub__, __rmul__, __rtruediv__ handle 1 - v, 2 * v, 2 / v"),
    Exercise(grade_id="test_affine", names=("affine_forward", "affine_backward"), cases=_affine_cases,
             driver="forward_backward",
             outputs={**LAYER_OUTPUTS, "dw": Tol(part="backward"), "db": Tol(part="backward")},
             parts={"forward": 1, "backward": 2}, rules=(NoLoops(), NO_TORCH_NO_LAYERS),
             hint="out = x.reshape(N, -1) @ w + b; dx = (dout @ w.T).reshape(x.shape), "
                  "dw = x.reshape(N, -1).T @ dout, db = dout.sum(axis=0)"),
    Exercise(grade_id="test_relu", names=("relu_forward", "relu_backward"), cases=_elementwise_cases,
             driver="forward_backward", outputs=LAYER_OUTPUTS, parts={"forward": 1, "backward": 1},
             rules=(NoLoops(), NO_TORCH_NO_LAYERS),
             hint="out = np.maximum(0, x) with cache = x; dx = dout * (x > 0): 0 where x <= 0, also at exactly 0"),
    Exercise(grade_id="test_sigmoid", names=("sigmoid_forward", "sigmoid_backward"), cases=_elementwise_cases,
             driver="forward_backward", outputs=LAYER_OUTPUTS, parts={"forward": 1, "backward": 1},
             rules=(NoLoops(), NO_TORCH),
             hint="out = 1 / (1 + exp(-x)), stable with z = exp(-|x|): 1/(1+z) for x >= 0, z/(1+z) otherwise; "
                  "cache out; dx = dout * out * (1 - out)"),
    Exercise(grade_id="test_softmax_loss", name="softmax_loss", cases=_loss_cases, outputs=("loss", "dx"),
             rules=(NoLoops(), NO_TORCH_NO_LAYERS),
             hint="subtract each row's max; loss = -mean of the correct classes' log-probabilities; "
                  "dx = (probabilities - one_hot(y)) / N"),
    Exercise(grade_id="test_svm_loss", name="svm_loss", cases=_loss_cases, outputs=("loss", "dx"),
             rules=(NoLoops(), NO_TORCH),
             hint="margins = max(0, x - x[rows, y][:, None] + 1) with the correct classes zeroed; loss = sum / N; "
                  "dx = +1 where a margin is > 0 (not at exactly 0), minus their count at the correct class, / N"),
    Exercise(grade_id="test_numerical_gradient", name="numerical_gradient", cases=_numerical_gradient_cases,
             driver="numerical_gradient_of",
             outputs={"grad": Tol(rtol=1e-6, atol=1e-8), "x_restored": Tol(exact=True)},
             rules=(NO_TORCH_NO_COURSE,),
             hint="centred differences (f(x + h) - f(x - h)) / (2h) with the given h; save each entry and "
                  "write it back exactly"),
    Exercise(grade_id="test_rel_error", name="rel_error", cases=_rel_error_cases,
             rules=(NoLoops(), NO_TORCH_NO_COURSE),
             hint="float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b)))); accept numbers too"),
    Exercise(grade_id="test_two_layer_net", name="TwoLayerNet", cases=_two_layer_cases, driver="two_layer_net",
             outputs=("init", "scores", "loss", "grads"),
             uses=("affine_forward", "affine_backward", "relu_forward", "relu_backward", "softmax_loss"),
             hint="W1, b1, W2, b2 in this order from rng.standard_normal; affine - relu - affine - softmax "
                  "with your layers; loss adds 0.5 * reg * (sum(W1**2) + sum(W2**2)), grads add reg * W"),
]

#: A wrong answer for an exercise no other one calls (the two-layer network uses softmax_loss).
WRONG_ANSWERS = {
    "svm_loss": "def svm_loss(x, y):\n"
                "    return 0.0, np.zeros_like(x)\n",
}
