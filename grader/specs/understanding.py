"""Hidden tests for 07_understanding_cnns (solutions/07_understanding_cnns/understanding_cnns.ipynb).

The functions that take a model (saliency maps, FGSM, the fooling image) get a small CNN built
on both sides by ``grader.drivers.understanding.probe_model`` with seeded weights, in eval mode:
RGB and grey images, non-square sizes, a single image, a batch of 64, a model with batch norm (a
function that switches it to training mode changes the answer, and the driver says so), and
float32.  The driver also checks that the images and the model's parameters are left as they
were.  FGSM is also graded with epsilon 0 (the images come back), with a large epsilon (most
pixels clamp at 0 or 1) and on images holding exact 0s and 1s.  The fooling image is graded on
models and targets where the ascent succeeds, one where the target is already predicted (no
step) and one that runs out of steps.

The losses and the Gram matrix are graded on their value and on the gradient of ``(out * r).sum()``
with respect to their inputs (``torch_fn_and_grad``), on shapes the notebook does not show: one
channel, 1x1 feature maps, a one-row image, a single pair, 256 triplets of 128-dimensional
embeddings, triplets that all satisfy the margin (the loss and its gradient are 0), bool and
integer ``same`` labels, and coincident pairs (value only: the distance's gradient is undefined
there).

Rules (stated in each docstring and checked by the visible self-checks): no Python loops in
``compute_saliency_maps``, ``fgsm_attack``, ``class_activation_map``, ``gram_matrix``,
``tv_loss``, ``triplet_loss`` and ``contrastive_loss``; not torch's own triplet losses;
``style_loss`` is graded with the reference ``gram_matrix``.
"""

from __future__ import annotations

import numpy as np

from course_utils.rules import Forbid, NoLoops
from grader.spec import Case, Exercise, Tol

ASSIGNMENT = "07_understanding_cnns"

TORCH_TRIPLET = Forbid(("torch.nn.functional.triplet_margin_loss", "torch.nn.TripletMarginLoss",
                        "torch.nn.functional.triplet_margin_with_distance_loss",
                        "torch.nn.TripletMarginWithDistanceLoss"),
                       what="not torch's own triplet losses")


def _model(C, K=10, width=6, batchnorm=False, seed=0):
    return {"channels": C, "classes": K, "width": width, "batchnorm": batchnorm, "seed": seed}


# --- saliency and class activation maps ---------------------------------------------------------


def _saliency_cases(rng: np.random.Generator) -> list[Case]:
    def case(shape, model, label, dtype="float64"):
        N, C, H, W = shape
        args = {"X": rng.uniform(size=shape), "y": rng.integers(0, model["classes"], size=N)}
        return Case({"model": model, "args": args, "out_shape": [N, H, W]}, label=label, dtype=dtype)

    return [
        case((4, 1, 12, 12), _model(1, seed=1), "4 grey images 12x12"),
        case((3, 3, 9, 11), _model(3, K=5, width=8, batchnorm=True, seed=2),
             "3 RGB images 9x11 (non-square), a model with batch norm (eval mode)"),
        case((1, 1, 8, 8), _model(1, seed=3), "a single image"),
        case((64, 1, 16, 16), _model(1, seed=4), "a batch of 64 (one backward pass)"),
        case((5, 3, 10, 10), _model(3, seed=5), "RGB, float32", dtype="float32"),
    ]


def _cam_cases(rng: np.random.Generator) -> list[Case]:
    def case(N, K, h, w, classes, per_image, label, dtype="float64"):
        idx = rng.integers(0, classes, size=N) if per_image else int(rng.integers(0, classes))
        return Case({"features": np.maximum(rng.normal(size=(N, K, h, w)), 0), "fc_weight": rng.normal(size=(classes, K)),
                     "class_idx": idx}, label=label, dtype=dtype)

    return [
        case(4, 16, 5, 5, 10, True, "4 images, 16 maps of 5x5, one class per image (a tensor)"),
        case(3, 8, 4, 6, 7, False, "non-square maps, one int class for every image"),
        case(1, 32, 1, 1, 5, True, "a single image with 1x1 maps"),
        case(6, 12, 7, 7, 3, True, "6 images, 3 classes, float32", dtype="float32"),
    ]


# --- adversarial examples ------------------------------------------------------------------------


def _fgsm_cases(rng: np.random.Generator) -> list[Case]:
    def case(shape, model, eps, label, dtype="float64", corners=False):
        N = shape[0]
        X = rng.uniform(size=shape)
        if corners:  # exact 0s and 1s, where the clamp decides
            X[..., ::3] = 0.0
            X[..., 1::3] = 1.0
        args = {"X": X, "y": rng.integers(0, model["classes"], size=N), "epsilon": eps}
        return Case({"model": model, "args": args, "out_shape": list(shape)}, label=label, dtype=dtype)

    return [
        case((4, 1, 12, 12), _model(1, seed=11), 0.05, "4 grey images, epsilon 0.05"),
        case((3, 3, 9, 11), _model(3, K=5, width=8, batchnorm=True, seed=12), 0.1,
             "3 RGB images 9x11, a model with batch norm, epsilon 0.1"),
        case((2, 1, 10, 10), _model(1, seed=13), 0.0, "epsilon 0: the images come back unchanged"),
        case((3, 1, 10, 10), _model(1, seed=14), 0.5, "epsilon 0.5: most pixels clamp at 0 or 1"),
        case((2, 3, 8, 8), _model(3, seed=15), 0.1, "pixels at exactly 0 and 1 (the clamp)", corners=True),
        case((64, 1, 16, 16), _model(1, seed=16), 0.03, "a batch of 64, float32", dtype="float32"),
    ]


def _fooling_cases(rng: np.random.Generator) -> list[Case]:
    def case(shape, model, target, label, **kwargs):
        args = {"X": rng.uniform(size=shape), "target_y": target, **kwargs}
        return Case({"model": model, "args": args, "out_shape": list(shape), "predict": True}, label=label)

    rng_first = np.random.default_rng(5)  # the images below were checked to be foolable in time
    x1, x2 = rng_first.uniform(size=(1, 1, 12, 12)), rng_first.uniform(size=(1, 3, 9, 11))
    x3, x4 = rng_first.uniform(size=(1, 1, 16, 16)), rng_first.uniform(size=(1, 1, 12, 12))

    def fixed(x, model, target, label, **kwargs):
        return Case({"model": model, "args": {"X": x, "target_y": target, **kwargs}, "out_shape": list(x.shape),
                     "predict": True}, label=label)

    m2 = _model(3, width=8, batchnorm=True, seed=2)
    return [
        fixed(x1, _model(1, seed=1), 3, "a grey 12x12 image, learning rate 1"),
        fixed(x2, m2, 1, "an RGB 9x11 image, a model with batch norm, learning rate 0.5", learning_rate=0.5),
        fixed(x2, m2, 6, "the same image, another target class", learning_rate=0.5),
        fixed(x3, _model(1, width=8, seed=3), 4, "a 16x16 image, learning rate 2", learning_rate=2.0),
        fixed(x4, _model(1, seed=4), 0, "learning rate 0.2", learning_rate=0.2),
        fixed(x4, _model(1, seed=4), 6, "max_iter 5: stops before the model is fooled", learning_rate=0.2,
              max_iter=5),
        case((1, 1, 10, 10), _model(1, seed=7), None, "the target is already the prediction: no step"),
    ]


def _fooling_cases_resolved(rng: np.random.Generator) -> list[Case]:
    """The last case's target is the model's own prediction, found here once so the case is data."""
    import torch

    from grader.drivers.understanding import probe_model

    cases = _fooling_cases(rng)
    last = cases[-1]
    model = probe_model(last.inputs["model"], {"dtype": "float64"})
    with torch.no_grad():
        pred = int(model(torch.as_tensor(last.inputs["args"]["X"])).argmax())
    last.inputs["args"]["target_y"] = pred
    return cases


# --- style transfer ------------------------------------------------------------------------------


def _gram_cases(rng: np.random.Generator) -> list[Case]:
    def case(shape, normalize, label, dtype="float64"):
        return Case({"args": {"features": rng.normal(size=shape), "normalize": normalize}, "grad": ["features"],
                     "shape": [shape[0], shape[1], shape[1]]}, label=label, dtype=dtype)

    return [
        case((2, 3, 4, 5), True, "2 images, 3 channels of 4x5, normalised"),
        case((1, 16, 8, 8), False, "16 channels, not normalised"),
        case((3, 1, 1, 1), True, "one channel of 1x1"),
        case((2, 8, 3, 7), True, "float32", dtype="float32"),
    ]


def _content_cases(rng: np.random.Generator) -> list[Case]:
    def case(shape, weight, label, dtype="float64"):
        return Case({"args": {"content_weight": weight, "content_current": rng.normal(size=shape),
                              "content_original": rng.normal(size=shape)},
                     "grad": ["content_current"], "shape": []}, label=label, dtype=dtype)

    return [case((1, 8, 5, 5), 1.0, "8 maps of 5x5, weight 1"), case((1, 3, 4, 7), 0.03, "non-square, weight 0.03"),
            case((1, 1, 1, 1), 5.0, "a single value"), case((1, 16, 6, 6), 0.5, "float32", dtype="float32")]


def _style_cases(rng: np.random.Generator) -> list[Case]:
    def case(shapes, layers, weights, label):
        feats = [rng.normal(size=s) for s in shapes]
        targets = []
        for layer in layers:
            C = shapes[layer][1]
            a = rng.normal(size=(1, C, 6))
            targets.append(a @ a.transpose(0, 2, 1) / (C * 6))  # a plausible (positive semi-definite) Gram
        return Case({"args": {"feats": feats, "style_layers": layers, "style_targets": targets,
                              "style_weights": weights}, "grad": ["feats"], "shape": []}, label=label)

    shapes = [(1, 4, 8, 8), (1, 6, 8, 8), (1, 8, 4, 4), (1, 8, 2, 2)]
    return [
        case(shapes, [0, 2, 3], [2.0, 0.5, 10.0], "three of four layers, different weights"),
        case(shapes, [1], [100.0], "a single layer"),
        case([(1, 2, 3, 3), (1, 4, 2, 2)], [0, 1], [1.0, 1.0], "two layers, both chosen"),
        case([(1, 3, 5, 7), (1, 5, 3, 4)], [1, 0], [1.0, 3.0], "non-square maps, layers listed out of order"),
    ]


def _tv_cases(rng: np.random.Generator) -> list[Case]:
    def case(shape, weight, label):
        return Case({"args": {"img": rng.normal(size=shape), "tv_weight": weight}, "grad": ["img"], "shape": []},
                    label=label)

    return [case((1, 3, 8, 9), 1.0, "an RGB 8x9 image"), case((1, 1, 1, 6), 0.5, "a one-row image"),
            case((1, 2, 5, 1), 2e-2, "a one-column image, weight 0.02"),
            case((1, 3, 1, 1), 1.0, "a single pixel (no neighbours: 0)")]


# --- metric learning -----------------------------------------------------------------------------


def _triplet_cases(rng: np.random.Generator) -> list[Case]:
    def case(N, D, margin, label, dtype="float64", satisfied=False):
        a, p, n = rng.normal(size=(N, D)), rng.normal(size=(N, D)), rng.normal(size=(N, D))
        if satisfied:  # positives next to the anchors, negatives far: every hinge is 0
            p, n = a + 0.01 * rng.normal(size=(N, D)), a + 10.0
        return Case({"args": {"anchor": a, "positive": p, "negative": n, "margin": margin},
                     "grad": ["anchor", "positive", "negative"], "shape": []}, label=label, dtype=dtype)

    return [
        case(8, 4, 1.0, "8 triplets in 4 dimensions, margin 1"),
        case(1, 2, 0.2, "a single triplet, margin 0.2"),
        case(6, 3, 0.5, "every triplet satisfies the margin (loss and gradient 0)", satisfied=True),
        case(256, 128, 0.3, "256 triplets of 128-dimensional embeddings"),
        case(10, 16, 2.0, "float32, margin 2", dtype="float32"),
    ]


def _contrastive_cases(rng: np.random.Generator) -> list[Case]:
    def case(N, D, margin, label, same=None, dtype="float64", scale=1.0, grad=True):
        x1, x2 = rng.normal(size=(N, D)), scale * rng.normal(size=(N, D))
        same = rng.integers(0, 2, size=N) if same is None else same
        return Case({"args": {"x1": x1, "x2": x2, "same": same, "margin": margin},
                     "grad": ["x1", "x2"] if grad else [], "shape": []}, label=label, dtype=dtype,
                    part=None if grad else "forward")

    coincide = case(4, 3, 1.0, "coincident pairs, same and different (value only)",
                    same=np.array([1, 0, 1, 0]), grad=False)
    coincide.inputs["args"]["x2"] = coincide.inputs["args"]["x1"].copy()
    return [
        case(8, 4, 2.0, "8 pairs in 4 dimensions, margin 2 (integer labels)"),
        case(6, 3, 1.0, "bool labels", same=rng.integers(0, 2, size=6).astype(bool)),
        case(5, 2, 1.0, "every pair different, some beyond the margin", same=np.zeros(5, dtype=np.int64), scale=0.3),
        case(1, 5, 1.5, "a single pair of one identity", same=np.ones(1, dtype=np.int64)),
        coincide,
        case(128, 32, 3.0, "128 pairs of 32-dimensional embeddings, float32", dtype="float32"),
    ]


MODEL_OUT = ("out",)
GRAD = lambda *names: ("out", *("d" + n for n in names))  # noqa: E731

EXERCISES = [
    Exercise(grade_id="test_compute_saliency_maps", name="compute_saliency_maps", cases=_saliency_cases,
             driver="with_model", outputs=MODEL_OUT, uses_torch=True, rules=(NoLoops(),),
             hint="X = X.detach().clone().requires_grad_(True); score = model(X).gather(1, y.view(-1, 1)).sum(); "
                  "grad = torch.autograd.grad(score, X)[0]; saliency = grad.abs().amax(dim=1)"),
    Exercise(grade_id="test_class_activation_map", name="class_activation_map", cases=_cam_cases,
             driver="call_torch", uses_torch=True, rules=(NoLoops(),),
             hint="pick each image's class row of fc_weight, shape (N, K), then "
                  "torch.einsum('nk,nkhw->nhw', weights, features); an int class_idx is the same row for all"),
    Exercise(grade_id="test_fgsm_attack", name="fgsm_attack", cases=_fgsm_cases, driver="with_model",
             outputs=MODEL_OUT, uses_torch=True, rules=(NoLoops(),),
             hint="loss = F.cross_entropy(model(X_in), y) with X_in a copy that requires grad; "
                  "X_adv = (X + epsilon * grad.sign()).clamp(0, 1)"),
    Exercise(grade_id="test_make_fooling_image", name="make_fooling_image", cases=_fooling_cases_resolved,
             driver="with_model", outputs={"out": Tol(), "predicted": Tol(exact=True)}, uses_torch=True,
             hint="check the prediction before each step (stop when it is target_y); step with "
                  "learning_rate * g / g.norm(), g the gradient of scores[0, target_y]; no clamping"),
    Exercise(grade_id="test_gram_matrix", name="gram_matrix", cases=_gram_cases, driver="torch_fn_and_grad",
             outputs=GRAD("features"), uses_torch=True, rules=(NoLoops(),),
             hint="f = features.reshape(N, C, H * W); gram = f @ f.transpose(1, 2), divided by C * H * W "
                  "when normalize"),
    Exercise(grade_id="test_content_loss", name="content_loss", cases=_content_cases, driver="torch_fn_and_grad",
             outputs=GRAD("content_current"), uses_torch=True,
             hint="content_weight * ((content_current - content_original) ** 2).sum()"),
    Exercise(grade_id="test_style_loss", name="style_loss", cases=_style_cases, driver="torch_fn_and_grad",
             outputs=GRAD("feats"), uses_torch=True, uses=("gram_matrix",),
             hint="for each (layer, target, weight): weight * ((gram_matrix(feats[layer]) - target) ** 2).sum(), "
                  "summed"),
    Exercise(grade_id="test_tv_loss", name="tv_loss", cases=_tv_cases, driver="torch_fn_and_grad",
             outputs=GRAD("img"), uses_torch=True, rules=(NoLoops(),),
             hint="tv_weight * (((img[:, :, 1:] - img[:, :, :-1]) ** 2).sum() "
                  "+ ((img[..., 1:] - img[..., :-1]) ** 2).sum())"),
    Exercise(grade_id="test_triplet_loss", name="triplet_loss", cases=_triplet_cases, driver="torch_fn_and_grad",
             outputs=GRAD("anchor", "positive", "negative"), uses_torch=True, rules=(NoLoops(), TORCH_TRIPLET),
             hint="d_pos = (anchor - positive).norm(dim=1); d_neg likewise; "
                  "F.relu(d_pos - d_neg + margin).mean()"),
    Exercise(grade_id="test_contrastive_loss", name="contrastive_loss", cases=_contrastive_cases,
             driver="torch_fn_and_grad", outputs={"out": Tol(part="forward"), "dx1": Tol(part="backward"),
                                                  "dx2": Tol(part="backward")},
             parts={"forward": 1, "backward": 1}, uses_torch=True, rules=(NoLoops(),),
             hint="same = same.to(x1.dtype); d = (x1 - x2).norm(dim=1); "
                  "(same * d ** 2 + (1 - same) * F.relu(margin - d) ** 2).mean() / 2"),
]

#: A wrong answer for an exercise no other one calls.
WRONG_ANSWERS = {
    "tv_loss": "def tv_loss(img, tv_weight):\n"
               "    return tv_weight * ((img[:, :, 1:, :] - img[:, :, :-1, :]) ** 2).sum()\n",
}
