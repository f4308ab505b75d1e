"""Drivers for PyTorch ``nn.Module`` classes.

A module is built right after the grader seeds torch, so its initial
parameters (``nn.Linear``'s default initialisation included) are the same
draws for the student's class and the reference's, and the two forward passes
can be compared number by number.
"""

from __future__ import annotations

from typing import Any

from . import driver, to_torch


@driver
def torch_module(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For an ``nn.Module`` class.

    Inputs: ``init`` (constructor keyword arguments), ``forward`` (keyword
    arguments of ``forward``; arrays become tensors of the case dtype on the
    device) and optionally ``backward`` (``True``: also back-propagate
    ``out.sum()`` and return the parameters' gradients).  The module is moved to
    the case's device and dtype after it is built.

    Returns ``{"out": output, "num_parameters": number of trainable values,
    "parameters": {name: shape}, "grads": {name: gradient} (with backward)}``.
    """
    import torch

    model = obj(**inputs.get("init", {}))
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{getattr(obj, '__name__', obj)} must be a torch.nn.Module subclass")
    model = model.to(device=torch.device(ctx.get("device", "cpu")), dtype=getattr(torch, ctx.get("dtype", "float32")))
    out = model(**to_torch(inputs.get("forward", {}), ctx))
    params = dict(model.named_parameters())
    result = {"out": out.detach() if isinstance(out, torch.Tensor) else out,
              "num_parameters": int(sum(p.numel() for p in params.values() if p.requires_grad)),
              "parameters": {k: list(p.shape) for k, p in params.items()}}
    if inputs.get("backward"):
        out.sum().backward()
        result["grads"] = {k: (p.grad.detach() if p.grad is not None else None) for k, p in params.items()}
    return result
