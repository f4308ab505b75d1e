"""Drivers for normalisation and regularisation (05_normalization_regularization).

Batch normalisation keeps state between calls (running averages in ``bn_param``), so
it is graded over a sequence of training batches followed by a test-mode call; a
loss written in PyTorch is graded on its value and on its gradient from autograd.
"""

from __future__ import annotations

import copy
from typing import Any

from . import driver, to_torch


@driver
def batchnorm_sequence(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For ``batchnorm_forward(x, gamma, beta, bn_param) -> (out, cache)``.

    Inputs: ``xs`` (training batches, each (N, D)), ``gamma``, ``beta``, ``bn_param``
    (the starting dict, without ``mode``), and ``x_test`` with ``test_param`` (a
    test-mode dict with given running averages, so that the test-mode output does
    not depend on the running averages computed before).

    Calls the function in train mode on every batch of ``xs`` with one ``bn_param``
    dict (so the running averages carry over), then in test mode on ``x_test``.
    Returns ``{"out_train": the output for the last batch, "running_mean",
    "running_var": as left in bn_param, "out_test": the test-mode output}``.
    """
    param = copy.deepcopy(inputs.get("bn_param") or {})
    param["mode"] = "train"
    out_train = None
    for x in inputs["xs"]:
        res = obj(x, inputs["gamma"], inputs["beta"], param)
        if not isinstance(res, (tuple, list)) or len(res) != 2:
            raise TypeError(f"batchnorm_forward must return a pair (out, cache), got {type(res).__name__}")
        out_train = res[0]
    test_param = copy.deepcopy(inputs["test_param"])
    test_param["mode"] = "test"
    out_test = obj(inputs["x_test"], inputs["gamma"], inputs["beta"], test_param)[0]
    return {"out_train": out_train, "running_mean": param.get("running_mean"),
            "running_var": param.get("running_var"), "out_test": out_test}


@driver
def torch_loss_and_grad(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For a PyTorch loss ``fn(logits, targets, **kwargs) -> 0-d tensor``.

    Inputs: ``logits`` (float array, becomes a tensor of the case dtype on the
    device, with ``requires_grad``), ``targets`` (integer array) and ``kwargs``.
    Returns ``{"loss": the loss (detached), "dlogits": its gradient from
    autograd}``; both stay on the device and in the dtype they come in.
    """
    logits = to_torch(inputs["logits"], ctx).requires_grad_(True)
    targets = to_torch(inputs["targets"], ctx)
    loss = obj(logits, targets, **inputs.get("kwargs", {}))
    if not hasattr(loss, "backward") or getattr(loss, "dim", lambda: -1)() != 0:
        raise TypeError(f"the loss must be a 0-dimensional tensor, got {type(loss).__name__}"
                        f"{' of shape ' + str(tuple(loss.shape)) if hasattr(loss, 'shape') else ''}")
    loss.backward()
    grad = logits.grad
    if grad is None:
        raise TypeError("the loss is not connected to the logits in the autograd graph "
                        "(no .item(), .detach() or numpy on the way)")
    return {"loss": loss.detach(), "dlogits": grad}

