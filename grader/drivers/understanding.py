"""Drivers for 07_understanding_cnns: functions that take a model, and differentiable losses.

A model is not plain data, so a case describes one (``{"channels": C, "classes": K, "width": w,
"batchnorm": bool, "seed": s}``) and :func:`probe_model` builds it on both sides: a small CNN
(convolution, optional batch norm, ReLU, max pooling, convolution, ReLU, global average pooling,
linear) whose every state-dict entry is filled with numbers drawn from a generator seeded by the
entry's name and the case's seed, so the student's call and the reference's see the same network.
The driver hands it over in eval mode and then checks that the function left it, and its input
images, as they were.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import driver, to_torch
from .cnn import _fill


def probe_model(spec: dict, ctx: dict) -> Any:
    """The CNN a case describes, in eval mode, on the case's device and dtype."""
    import torch
    from torch import nn

    C, K, w = int(spec.get("channels", 1)), int(spec.get("classes", 10)), int(spec.get("width", 8))
    layers = [nn.Conv2d(C, w, 3, padding=1)]
    if spec.get("batchnorm"):
        layers.append(nn.BatchNorm2d(w))
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(),
               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * w, K)]
    model = nn.Sequential(*layers)
    seed = int(spec.get("seed", 0))
    state = model.state_dict()
    model.load_state_dict({k: (torch.as_tensor(_fill(k, tuple(v.shape), seed)) if v.is_floating_point() else v)
                           for k, v in state.items()})
    model = model.to(device=torch.device(ctx.get("device", "cpu")), dtype=getattr(torch, ctx.get("dtype", "float64")))
    return model.eval()


def _as_tensor_result(value: Any, what: str, shape: tuple | None = None) -> Any:
    import torch

    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{what} must return a torch tensor, got {type(value).__name__}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise ValueError(f"{what} returned shape {tuple(value.shape)}; expected {tuple(shape)}")
    return value.detach()


@driver
def with_model(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For a function with a ``model`` argument (saliency maps, adversarial examples).

    Inputs: ``model`` (a :func:`probe_model` description), ``args`` (the other keyword arguments:
    float arrays become tensors of the case dtype on the device, integer arrays int64 tensors),
    ``out_shape`` (the shape the result must have) and optionally ``predict`` (also return the
    model's predicted classes for the result, for an image meant to fool it).

    Returns ``{"out": the result, "predicted": argmax of the model's scores for it (with
    ``predict``)}``.  Raises a ``ValueError`` that says what happened when the function changed
    its input images or the model's parameters, or left the model in training mode.
    """
    import torch

    model = probe_model(inputs["model"], ctx)
    args = to_torch(inputs["args"], ctx)
    before_args = {k: v.clone() for k, v in args.items() if isinstance(v, torch.Tensor)}
    before_params = {k: v.detach().clone() for k, v in model.state_dict().items()}
    name = getattr(obj, "__name__", "the function")
    out = _as_tensor_result(obj(model=model, **args), name, inputs.get("out_shape"))
    for k, v in before_args.items():
        if not torch.equal(args[k].detach(), v):
            raise ValueError(f"{name} changed its input {k} in place; work on a copy "
                             f"({k}.detach().clone()) and return a new tensor")
    for k, v in model.state_dict().items():
        if not torch.equal(v.detach(), before_params[k]):
            raise ValueError(f"{name} changed the model's {k}; only the input images may be differentiated "
                             "(torch.autograd.grad(score, X), or zero X.grad): no optimiser step on the model")
    if model.training:
        raise ValueError(f"{name} left the model in training mode; it is given in eval mode and must stay "
                         "so (batch norm and dropout behave differently in training mode)")
    result = {"out": out}
    if inputs.get("predict"):
        with torch.no_grad():
            result["predicted"] = model(out.to(next(model.parameters()).dtype)).argmax(dim=1)
    return result


@driver
def torch_fn_and_grad(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For a differentiable PyTorch function of tensors (a loss, a Gram matrix).

    Inputs: ``args`` (keyword arguments; float arrays, and lists of them, become tensors of the case
    dtype on the device; the rest stays as it is), ``grad`` (names of the arguments to
    differentiate with respect to) and ``shape`` (the shape the result must have, ``[]`` for a
    loss).  Back-propagates ``(out * r).sum()`` for a fixed random ``r`` of the output's shape.

    Returns ``{"out": the result, "d<name>": its gradient for each name in ``grad`` (a list for a
    list argument)}``.
    """
    import torch

    args = to_torch(inputs["args"], ctx)
    leaves = []
    for g in inputs.get("grad", []):
        if isinstance(args[g], list):
            args[g] = [t.clone().requires_grad_(True) for t in args[g]]
            leaves += args[g]
        else:
            args[g] = args[g].clone().requires_grad_(True)
            leaves.append(args[g])
    name = getattr(obj, "__name__", "the function")
    out = obj(**args)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{name} must return a torch tensor, got {type(out).__name__}")
    if "shape" in inputs and tuple(out.shape) != tuple(inputs["shape"]):
        want = "a 0-dimensional tensor (a loss: .sum() or .mean(), not .item())" if not inputs["shape"] \
            else str(tuple(inputs["shape"]))
        raise ValueError(f"{name} returned shape {tuple(out.shape)}; expected {want}")
    result = {"out": out.detach()}
    if leaves:
        if not out.requires_grad:
            raise TypeError(f"{name}'s result is not connected to its inputs in the autograd graph "
                            "(no .item(), .detach(), numpy or torch.no_grad() on the way)")
        r = torch.as_tensor(np.random.default_rng(int(ctx.get("seed") or 0)).normal(size=tuple(out.shape)),
                            dtype=out.dtype, device=out.device)
        (out * r).sum().backward()
        for g in inputs.get("grad", []):
            value = args[g]
            grads = [t.grad for t in value] if isinstance(value, list) else value.grad
            if isinstance(grads, list):
                grads = [torch.zeros_like(t) if gr is None else gr for t, gr in zip(value, grads)]
            elif grads is None:
                grads = torch.zeros_like(value)
            result["d" + g] = grads
    return result
