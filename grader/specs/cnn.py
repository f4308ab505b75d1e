"""Hidden tests for 06_cnn (solutions/06_cnn/cnn.ipynb).

``conv_output_size`` is called on many size tuples per case (``call_each``), including
the ones that must raise ``ValueError`` (a kernel larger than the padded input, negative
padding, zero stride).  ``conv_layer_stats`` gets AlexNet's and VGG's layers and odd,
non-square sizes.  The numpy layers are graded as (forward, backward) pairs by the
generic ``forward_backward`` driver on shapes the notebook does not show: stride 2 and 3,
padding 0 to 2, non-square kernels and images, N = 1, 1x1 kernels, and (for pooling)
integer inputs with ties and overlapping windows.  ``im2col`` is compared as a matrix, and
``conv_forward_im2col`` on a batch of 32 images of 16 x 32 x 32 (where a Python loop over
pixels would take most of the time limit).  The PyTorch blocks are built with the case's
arguments, their weights filled by state-dict name (``block_with_weights``), and compared
in eval mode, in training mode and through the gradient with respect to the input; the
sorted state-dict names and shapes and the parameter count are compared exactly.

Rules (stated in each docstring and checked by the visible self-checks): no torch and not
course_utils.layers in the numpy exercises; im2col at most two Python loops;
conv_forward_im2col no Python loops.
"""

from __future__ import annotations

import numpy as np

from course_utils.rules import AtMostLoops
from grader.spec import Case, Exercise, Forbid, NoLoops, Tol

ASSIGNMENT = "06_cnn"

NUMPY_ONLY = Forbid(("torch", "course_utils.layers"))
NUMPY_ONLY_FAST = Forbid(("torch", "scipy", "course_utils.layers"))


# --- sizes and costs ------------------------------------------------------------------------


def _size_cases(rng: np.random.Generator) -> list[Case]:
    def calls(rows):
        return {"calls": [{"size": s, "kernel": k, "pad": p, "stride": st} for s, k, p, st in rows]}

    random_rows = [(int(rng.integers(5, 300)), int(rng.integers(1, 8)), int(rng.integers(0, 4)),
                    int(rng.integers(1, 5))) for _ in range(30)]
    return [
        Case(calls([(32, 3, 1, 1), (32, 5, 2, 1), (28, 5, 0, 1), (32, 2, 0, 2), (7, 7, 0, 1)]),
             label="'same' and 'valid' convolutions, a 2x2 pool, a kernel as large as the input"),
        Case(calls([(227, 11, 0, 4), (224, 11, 2, 4), (224, 7, 3, 2), (56, 3, 1, 2), (55, 3, 0, 2)]),
             label="AlexNet and ResNet stems, strided 3x3 (some leave positions over: floor)"),
        Case(calls(random_rows), label="30 random sizes, kernels, paddings and strides"),
        Case(calls([(5, 7, 0, 1), (5, 7, 1, 1), (1, 1, 0, 1), (1, 3, 1, 1), (4, 3, -1, 1), (8, 3, 1, 0),
                    (0, 1, 0, 1), (6, 0, 0, 1)]),
             label="kernels that do not fit, the smallest inputs, invalid pad, stride, size and kernel "
                   "(ValueError)"),
    ]


def _stats_cases(rng: np.random.Generator) -> list[Case]:
    def case(C_in, H, W, F, kernel, stride, pad):
        return {"C_in": C_in, "H": H, "W": W, "F": F, "kernel": kernel, "stride": stride, "pad": pad}

    return [
        Case(case(3, 227, 227, 96, 11, 4, 0), label="AlexNet's first layer"),
        Case(case(3, 224, 224, 64, 3, 1, 1), label="VGG's first layer"),
        Case(case(512, 14, 14, 512, 3, 1, 1), label="a late VGG layer"),
        Case(case(256, 56, 56, 64, 1, 1, 0), label="a 1x1 convolution"),
        Case(case(5, 31, 17, 7, 5, 3, 2), label="a non-square image, stride 3"),
        Case(case(int(rng.integers(1, 64)), int(rng.integers(8, 64)), int(rng.integers(8, 64)),
                  int(rng.integers(1, 64)), 3, 2, 0), label="random sizes, 3x3, stride 2, no padding"),
    ]


# --- numpy layers ------------------------------------------------------------------------------


CONV_SHAPES = [  # (N, C, H, W), (F, HH, WW), stride, pad, label
    ((2, 3, 8, 8), (4, 3, 3), 1, 1, "x (2, 3, 8, 8), 3x3, stride 1, pad 1"),
    ((1, 2, 7, 9), (3, 3, 2), 2, 1, "a single image, non-square image and kernel (3x2), stride 2"),
    ((3, 1, 9, 6), (2, 1, 3), 3, 2, "non-square 1x3 kernel, stride 3, pad 2"),
    ((2, 4, 5, 5), (5, 1, 1), 1, 0, "1x1 kernels"),
    ((2, 2, 6, 7), (3, 5, 5), 2, 2, "5x5 kernel, stride 2, pad 2 (a position left over: floor)"),
    ((1, 3, 4, 4), (2, 4, 4), 1, 0, "a kernel as large as the image (one output per filter)"),
]


def _conv_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for (N, C, H, W), (F, HH, WW), S, P, label in CONV_SHAPES:
        args = {"x": rng.normal(size=(N, C, H, W)), "w": rng.normal(size=(F, C, HH, WW)),
                "b": rng.normal(size=F), "conv_param": {"stride": S, "pad": P}}
        H_out, W_out = 1 + (H + 2 * P - HH) // S, 1 + (W + 2 * P - WW) // S
        cases.append(Case({"forward": args}, label=f"forward: {label}", part="forward"))
        cases.append(Case({"forward": args, "dout": rng.normal(size=(N, F, H_out, W_out))},
                          label=f"backward: {label}", part="backward"))
    return cases


POOL_SHAPES = [  # (N, C, H, W), (pool_height, pool_width, stride), integer values?, label
    ((2, 3, 8, 8), (2, 2, 2), False, "x (2, 3, 8, 8), 2x2 windows, stride 2"),
    ((1, 2, 7, 9), (3, 3, 2), False, "overlapping 3x3 windows, stride 2 (gradients add up)"),
    ((2, 2, 6, 9), (2, 3, 3), False, "non-square 2x3 windows, stride 3"),
    ((3, 2, 6, 6), (2, 2, 2), True, "integer values: ties inside windows (the first maximum gets the gradient)"),
    ((2, 1, 7, 7), (3, 3, 2), True, "integer values, overlapping windows with ties"),
    ((1, 1, 5, 5), (5, 5, 1), False, "one window covering the whole image"),
]


def _pool_cases(rng: np.random.Generator) -> list[Case]:
    cases = []
    for shape, (PH, PW, S), integer, label in POOL_SHAPES:
        x = rng.integers(0, 3, size=shape).astype(np.float64) if integer else rng.normal(size=shape)
        args = {"x": x, "pool_param": {"pool_height": PH, "pool_width": PW, "stride": S}}
        N, C, H, W = shape
        out_shape = (N, C, 1 + (H - PH) // S, 1 + (W - PW) // S)
        cases.append(Case({"forward": args}, label=f"forward: {label}", part="forward"))
        cases.append(Case({"forward": args, "dout": rng.normal(size=out_shape)}, label=f"backward: {label}",
                          part="backward"))
    return cases


def _im2col_cases(rng: np.random.Generator) -> list[Case]:
    def case(shape, HH, WW, S, P):
        return {"x": rng.normal(size=shape), "HH": HH, "WW": WW, "stride": S, "pad": P}

    return [
        Case(case((2, 3, 5, 5), 3, 3, 1, 1), label="x (2, 3, 5, 5), 3x3, stride 1, pad 1"),
        Case(case((1, 2, 7, 6), 3, 2, 2, 1), label="a single image, non-square kernel 3x2, stride 2"),
        Case(case((3, 1, 8, 9), 1, 3, 3, 2), label="1x3 kernel, stride 3, pad 2"),
        Case(case((2, 4, 6, 6), 1, 1, 1, 0), label="1x1 kernels"),
        Case(case((1, 3, 4, 4), 4, 4, 1, 0), label="a kernel as large as the image"),
    ]


def _fast_conv_cases(rng: np.random.Generator) -> list[Case]:
    def case(shape, F, HH, WW, S, P):
        C = shape[1]
        return {"x": rng.normal(size=shape), "w": rng.normal(size=(F, C, HH, WW)), "b": rng.normal(size=F),
                "conv_param": {"stride": S, "pad": P}}

    return [
        Case(case((2, 3, 8, 8), 4, 3, 3, 1, 1), label="x (2, 3, 8, 8), 3x3, stride 1, pad 1"),
        Case(case((1, 2, 7, 9), 3, 3, 2, 2, 1), label="a single image, non-square kernel, stride 2"),
        Case(case((2, 2, 6, 7), 3, 5, 5, 2, 2), label="5x5 kernel, stride 2, pad 2"),
        Case(case((32, 16, 32, 32), 32, 3, 3, 1, 1),
             label="a batch of 32 images 16 x 32 x 32, 32 filters 3x3 (too slow with a loop over pixels)"),
    ]


# --- PyTorch blocks ---------------------------------------------------------------------------


def _block_case(rng, init, x_shape, label, dtype="float64"):
    return Case({"init": init, "x": rng.normal(size=x_shape)}, label=label, dtype=dtype)


def _residual_cases(rng: np.random.Generator) -> list[Case]:
    return [
        _block_case(rng, {"in_channels": 4, "out_channels": 4}, (3, 4, 6, 6), "identity shortcut, 4 channels"),
        _block_case(rng, {"in_channels": 3, "out_channels": 8, "stride": 2}, (2, 3, 8, 8),
                    "projection shortcut: stride 2 and 3 -> 8 channels"),
        _block_case(rng, {"in_channels": 4, "out_channels": 6}, (2, 4, 5, 5),
                    "projection shortcut: stride 1, 4 -> 6 channels"),
        _block_case(rng, {"in_channels": 5, "out_channels": 5, "stride": 2}, (2, 5, 7, 7),
                    "projection shortcut: stride 2, same channels, odd image size"),
        _block_case(rng, {"in_channels": 3, "out_channels": 6, "stride": 2}, (2, 3, 8, 8),
                    "projection shortcut, float32", dtype="float32"),
    ]


def _bottleneck_cases(rng: np.random.Generator) -> list[Case]:
    return [
        _block_case(rng, {"in_channels": 16, "mid_channels": 4}, (2, 16, 5, 5),
                    "identity shortcut: 16 = 4 * 4 channels"),
        _block_case(rng, {"in_channels": 8, "mid_channels": 4}, (2, 8, 6, 6),
                    "projection shortcut: 8 -> 16 channels, stride 1"),
        _block_case(rng, {"in_channels": 16, "mid_channels": 4, "stride": 2}, (2, 16, 7, 7),
                    "projection shortcut: stride 2 on the 3x3, odd image size"),
        _block_case(rng, {"in_channels": 6, "mid_channels": 2, "stride": 2}, (3, 6, 6, 6),
                    "projection shortcut, float32", dtype="float32"),
    ]


def _separable_cases(rng: np.random.Generator) -> list[Case]:
    return [
        _block_case(rng, {"in_channels": 4, "out_channels": 8}, (2, 4, 6, 6), "3x3, stride 1"),
        _block_case(rng, {"in_channels": 6, "out_channels": 3, "stride": 2}, (2, 6, 7, 7),
                    "stride 2, fewer output channels"),
        _block_case(rng, {"in_channels": 3, "out_channels": 5, "kernel_size": 5}, (2, 3, 6, 8),
                    "a 5x5 kernel, non-square image"),
        _block_case(rng, {"in_channels": 4, "out_channels": 4, "stride": 2}, (2, 4, 6, 6), "float32",
                    dtype="float32"),
    ]


def _se_cases(rng: np.random.Generator) -> list[Case]:
    return [
        _block_case(rng, {"channels": 8}, (2, 8, 5, 5), "8 channels, reduction 4"),
        _block_case(rng, {"channels": 12, "reduction": 3}, (3, 12, 4, 6), "12 channels, reduction 3"),
        _block_case(rng, {"channels": 3, "reduction": 4}, (2, 3, 5, 5), "3 channels: hidden = max(1, 3 // 4) = 1"),
        _block_case(rng, {"channels": 6, "reduction": 2}, (1, 6, 1, 1), "a single 1x1 image"),
        _block_case(rng, {"channels": 8}, (2, 8, 5, 5), "float32", dtype="float32"),
    ]


LAYER = {"out": Tol(part="forward"), "dx": Tol(part="backward")}
BLOCK_OUTPUTS = {"state_shapes": Tol(exact=True), "num_parameters": Tol(exact=True), "out_eval": Tol(),
                 "out_train": Tol(), "dx": Tol()}

EXERCISES = [
    Exercise(grade_id="test_conv_output_size", name="conv_output_size", cases=_size_cases, driver="call_each",
             compare="exact", rules=(NUMPY_ONLY,),
             hint="(size - kernel + 2 * pad) // stride + 1; raise ValueError when kernel > size + 2 * pad, "
                  "or when size < 1, kernel < 1, pad < 0 or stride < 1"),
    Exercise(grade_id="test_conv_layer_stats", name="conv_layer_stats", cases=_stats_cases,
             outputs={"params": Tol(exact=True), "output_shape": Tol(exact=True), "activations": Tol(exact=True),
                      "flops": Tol(exact=True)},
             rules=(NUMPY_ONLY,), uses=("conv_output_size",),
             hint="params = F * (C_in * K * K + 1); activations = F * H_out * W_out; "
                  "flops = activations * C_in * K * K (multiply-adds)"),
    Exercise(grade_id="test_conv_naive", names=("conv_forward_naive", "conv_backward_naive"), cases=_conv_cases,
             driver="forward_backward",
             outputs={**LAYER, "dw": Tol(part="backward"), "db": Tol(part="backward")},
             parts={"forward": 2, "backward": 3}, rules=(NUMPY_ONLY,),
             hint="pad x with np.pad; out[n, f, i, j] = sum(x_pad[n, :, i*S:i*S+HH, j*S:j*S+WW] * w[f]) + b[f]; "
                  "backward: each window adds dout[n, f, i, j] * w[f] to dx_pad and dout * window to dw; "
                  "db sums dout over n, i, j; strip the padding from dx_pad"),
    Exercise(grade_id="test_max_pool_naive", names=("max_pool_forward_naive", "max_pool_backward_naive"),
             cases=_pool_cases, driver="forward_backward", outputs=LAYER,
             parts={"forward": 1, "backward": 2}, rules=(NUMPY_ONLY,),
             hint="out is the max of each window; backward: np.argmax of the flattened window gives the first "
                  "maximum; add (+=) dout there, as overlapping windows can share a maximum"),
    Exercise(grade_id="test_im2col", name="im2col", cases=_im2col_cases, rules=(AtMostLoops(2), NUMPY_ONLY_FAST),
             hint="pad, then np.lib.stride_tricks.sliding_window_view(x_pad, (HH, WW), axis=(2, 3)), keep every "
                  "stride-th window, transpose to (N, H_out, W_out, C, HH, WW) and reshape"),
    Exercise(grade_id="test_conv_forward_im2col", name="conv_forward_im2col", cases=_fast_conv_cases,
             outputs={"out": Tol(), "cache": Tol(compare=False)}, rules=(NoLoops(), NUMPY_ONLY_FAST),
             uses=("im2col",),
             hint="cols = im2col(x, HH, WW, S, P); out = cols @ w.reshape(F, -1).T + b has shape "
                  "(N * H_out * W_out, F): reshape to (N, H_out, W_out, F) and transpose to (N, F, H_out, W_out)"),
    Exercise(grade_id="test_residual_block", name="ResidualBlock", cases=_residual_cases,
             driver="block_with_weights", outputs=BLOCK_OUTPUTS, uses_torch=True,
             hint="conv1 (3x3, stride, pad 1, no bias) - bn1 - relu - conv2 (3x3, pad 1, no bias) - bn2, plus "
                  "the shortcut, then relu; the shortcut is Sequential(1x1 conv with the stride, BatchNorm2d) "
                  "when the stride or the channels change, else nn.Identity()"),
    Exercise(grade_id="test_bottleneck_block", name="BottleneckBlock", cases=_bottleneck_cases,
             driver="block_with_weights", outputs=BLOCK_OUTPUTS, uses_torch=True,
             hint="1x1 in -> mid, 3x3 mid -> mid with the stride, 1x1 mid -> 4 * mid, each with its BatchNorm2d "
                  "(ReLU after the first two); add the shortcut, then relu"),
    Exercise(grade_id="test_depthwise_separable_conv", name="DepthwiseSeparableConv", cases=_separable_cases,
             driver="block_with_weights", outputs=BLOCK_OUTPUTS, uses_torch=True,
             hint="depthwise = Conv2d(in, in, k, stride, padding=k // 2, groups=in, bias=False); "
                  "pointwise = Conv2d(in, out, 1, bias=False); BN and ReLU after each"),
    Exercise(grade_id="test_se_block", name="SEBlock", cases=_se_cases, driver="block_with_weights",
             outputs=BLOCK_OUTPUTS, uses_torch=True,
             hint="s = x.mean(dim=(2, 3)); s = sigmoid(fc2(relu(fc1(s)))); return x * s[:, :, None, None]; "
                  "hidden = max(1, channels // reduction)"),
]

#: A wrong answer for an exercise no other one calls.
WRONG_ANSWERS = {
    "se_block": "class SEBlock(nn.Module):\n"
                "    def __init__(self, channels, reduction=4):\n"
                "        super().__init__()\n"
                "        hidden = max(1, channels // reduction)\n"
                "        self.fc1 = nn.Linear(channels, hidden)\n"
                "        self.fc2 = nn.Linear(hidden, channels)\n"
                "\n"
                "    def forward(self, x):\n"
                "        return x\n",
}
