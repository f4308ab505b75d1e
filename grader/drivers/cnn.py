"""Drivers for 06_cnn: sizes that raise, and PyTorch blocks with weights copied in by name.

A block's initial weights depend on the order in which its layers are created, which the
exercise does not fix; its attribute names, which the exercise does fix, are what a
state dict is keyed by.  ``block_with_weights`` therefore fills every floating-point
entry of the block's ``state_dict()`` with numbers drawn from a generator seeded by the
entry's name (and the case's seed), so a student's block and the reference hold the same
weights exactly when they have the same structure, whatever the order of creation.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from . import driver, to_torch


@driver
def call_each(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For a function of a few numbers that must raise ``ValueError`` on some of them.

    Inputs: ``calls``, a list of keyword-argument dicts.  Returns one entry per call:
    the return value (a tuple becomes a list), or the string ``"ValueError"`` when the
    call raised one (any other exception propagates).
    """
    results = []
    for args in inputs["calls"]:
        try:
            value = obj(**args)
        except ValueError:
            results.append("ValueError")
            continue
        results.append(list(value) if isinstance(value, tuple) else value)
    return results


def _fill(name: str, shape: tuple, seed: int) -> np.ndarray:
    rng = np.random.default_rng([zlib.crc32(name.encode()), int(seed)])
    if name.endswith("running_var"):
        return rng.uniform(0.5, 2.0, size=shape)
    if name.endswith("bn1.weight") or name.endswith("bn2.weight") or name.endswith("bn3.weight") \
            or name.endswith("shortcut.1.weight"):
        return rng.uniform(0.5, 1.5, size=shape)
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    return rng.normal(scale=1.0 / np.sqrt(fan_in), size=shape)


@driver
def block_with_weights(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For an ``nn.Module`` class whose attribute names are part of the exercise.

    Inputs: ``init`` (constructor keyword arguments) and ``x`` (the input batch; it
    becomes a tensor of the case dtype on the device).  Builds the module, fills its
    state dict by name (see the module docstring), and returns
    ``{"state_shapes": sorted [name, shape] of the floating-point state entries,
    "num_parameters": trainable values, "out_eval": output in eval mode (running
    statistics), "out_train": output in training mode (batch statistics), "dx": gradient
    of (out_train * r).sum() with respect to x, for a fixed random r}``.
    """
    import torch

    model = obj(**inputs.get("init", {}))
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{getattr(obj, '__name__', obj)} must be a torch.nn.Module subclass")
    dev, dtype = torch.device(ctx.get("device", "cpu")), getattr(torch, ctx.get("dtype", "float32"))
    state = model.state_dict()
    shapes = sorted([k, list(v.shape)] for k, v in state.items() if v.is_floating_point())
    seed = int(ctx.get("seed") or 0)
    filled = {k: (torch.as_tensor(_fill(k, tuple(v.shape), seed)) if v.is_floating_point() else v)
              for k, v in state.items()}
    model.load_state_dict(filled)
    model = model.to(device=dev, dtype=dtype)
    num_parameters = int(sum(p.numel() for p in model.parameters() if p.requires_grad))
    x = to_torch(np.asarray(inputs["x"], dtype=np.float64), ctx)
    model.eval()
    with torch.no_grad():
        out_eval = model(x)
    model.train()
    x = x.clone().requires_grad_(True)
    out_train = model(x)
    r = torch.as_tensor(np.random.default_rng(seed).normal(size=tuple(out_train.shape)), dtype=out_train.dtype,
                        device=out_train.device)
    (out_train * r).sum().backward()
    return {"state_shapes": shapes, "num_parameters": num_parameters, "out_eval": out_eval.detach(),
            "out_train": out_train.detach(), "dx": x.grad.detach()}
