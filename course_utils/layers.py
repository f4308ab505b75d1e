"""Numpy building blocks for the assignments after 03_backprop.

03_backprop has students write these layers; later assignments (optimisation, normalisation,
CNNs) need them as parts, so the course ships one tested copy here, float64 numpy throughout:

    from course_utils.layers import FullyConnectedNet, NumpyOptimizer, adam

    net = FullyConnectedNet(64, [100, 100], 10, init="kaiming", reg=1e-4, seed=0)
    model = NumpyOptimizer(net, adam, {"learning_rate": 1e-3})
    history = Trainer(num_epochs=10, batch_size=100, seed=0).fit(model, X, y, X_val, y_val)

Layer API (as in 03_backprop): ``*_forward(...) -> (out, cache)`` and
``*_backward(dout, cache) -> gradients``. Update-rule API (as in 04_optimization):
``rule(w, dw, config=None) -> (next_w, config)``, the rule's state kept in ``config``.

Assignments that grade these functions forbid importing this module in their answers.

Dimension letters: N examples, D input features, H hidden units, C classes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "FullyConnectedNet", "NumpyOptimizer", "adam", "affine_backward", "affine_forward",
    "relu_backward", "relu_forward", "sgd", "sgd_momentum", "softmax_loss",
]


# ----------------------------------------------------------------------------- layers
def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """out = x.reshape(N, D) @ w + b; x (N, d_1, ..., d_k), w (D, M), b (M,) -> out (N, M)."""
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dout (N, M) -> (dx shaped like x, dw (D, M), db (M,))."""
    x, w, _ = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """max(0, x) elementwise; the cache is x."""
    return np.maximum(0, x), x


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """The upstream gradient where the input was positive, 0 elsewhere."""
    return dout * (cache > 0)


def softmax_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of scores x (N, C) against integer labels y (N,), and d loss / dx."""
    n = x.shape[0]
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(n), y].mean()
    dx = np.exp(log_probs)
    dx[np.arange(n), y] -= 1.0
    return float(loss), dx / n


# ----------------------------------------------------------------------------- update rules
def sgd(w: np.ndarray, dw: np.ndarray, config: dict | None = None) -> tuple[np.ndarray, dict]:
    """w - learning_rate * dw (config: learning_rate, default 1e-2)."""
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    return w - config["learning_rate"] * dw, config


def sgd_momentum(w: np.ndarray, dw: np.ndarray, config: dict | None = None) -> tuple[np.ndarray, dict]:
    """v = momentum * v - learning_rate * dw; w + v (config: learning_rate 1e-2, momentum 0.9, velocity)."""
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    v = config.get("velocity", np.zeros_like(w))
    v = config["momentum"] * v - config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config


def adam(w: np.ndarray, dw: np.ndarray, config: dict | None = None) -> tuple[np.ndarray, dict]:
    """Adam with bias correction (config: learning_rate 1e-3, beta1 0.9, beta2 0.999, epsilon 1e-8,
    moments m and v, step count t counted from 1)."""
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    m = config.get("m", np.zeros_like(w))
    v = config.get("v", np.zeros_like(w))
    t = config.get("t", 0) + 1
    m = config["beta1"] * m + (1 - config["beta1"]) * dw
    v = config["beta2"] * v + (1 - config["beta2"]) * dw**2
    m_hat = m / (1 - config["beta1"] ** t)
    v_hat = v / (1 - config["beta2"] ** t)
    config.update(m=m, v=v, t=t)
    return w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"]), config


# ----------------------------------------------------------------------------- a network
Initialiser = Callable[[int, int, np.random.Generator], np.ndarray]


def _initialiser(init: str | float | Initialiser) -> Initialiser:
    if callable(init):
        return init
    if isinstance(init, str):
        variances = {"xavier": lambda fan_in, fan_out: 2.0 / (fan_in + fan_out),  # Glorot, as torch's xavier_normal_
                     "kaiming": lambda fan_in, fan_out: 2.0 / fan_in}  # He, for ReLU
        if init not in variances:
            raise ValueError(f"init must be 'xavier', 'kaiming', a standard deviation or a function "
                             f"(fan_in, fan_out, rng) -> weights; got {init!r}")
        var = variances[init]
        return lambda fan_in, fan_out, rng: rng.standard_normal((fan_in, fan_out)) * np.sqrt(var(fan_in, fan_out))
    scale = float(init)
    return lambda fan_in, fan_out, rng: scale * rng.standard_normal((fan_in, fan_out))


class FullyConnectedNet:
    """A fully connected network: {affine - [norm] - relu - [dropout]} x L-1, affine - softmax.

    Inputs:
    - input_dim (D), hidden_dims (a list of H's, one per hidden layer), num_classes (C)
    - init: every layer's weight standard deviation (a float), "xavier" (Glorot's variance
      2/(fan_in + fan_out), as torch.nn.init.xavier_normal_), "kaiming" (2/fan_in), or a function
      ``(fan_in, fan_out, rng) -> (fan_in, fan_out) array``
    - reg: L2 strength; the loss adds 0.5 * reg * sum of every W squared (not the biases,
      gammas or betas)
    - normalization: None, or a pair ``(forward, backward)`` with
      ``forward(x, gamma, beta, param) -> (out, cache)`` and
      ``backward(dout, cache) -> (dx, dgamma, dbeta)`` (batch or layer normalisation), and
      ``norm_param`` the dict each layer's ``param`` starts from (a copy per layer; its
      ``"mode"`` key is set to the network's mode on every call)
    - dropout: None, or a triple ``(forward, backward, p)`` with
      ``forward(x, dropout_param) -> (out, cache)``, ``backward(dout, cache) -> dx`` and
      ``p`` the probability of zeroing a unit; each layer's ``dropout_param`` gets a seed
      drawn from the network's generator on every training call, so runs repeat
    - seed: seeds the initial weights and the dropout masks

    Attributes: ``params`` (a dict of float64 arrays W1, b1, ..., with gamma1, beta1, ...
    where normalised), ``norm_params`` (one dict per hidden layer: running statistics live
    there), ``mode`` ("train" or "test"; ``loss(X, y)`` trains, ``loss(X)`` tests unless
    ``mode`` is forced).
    """

    def __init__(self, input_dim: int, hidden_dims: Sequence[int], num_classes: int, *,
                 init: str | float | Initialiser = 1e-2, reg: float = 0.0,
                 normalization: tuple[Callable, Callable] | None = None, norm_param: dict | None = None,
                 dropout: tuple[Callable, Callable, float] | None = None, seed: int = 0):
        self.reg = float(reg)
        self.num_layers = len(hidden_dims) + 1
        self.normalization, self.dropout = normalization, dropout
        self.rng = np.random.default_rng(seed)
        make = _initialiser(init)
        dims = [int(input_dim), *map(int, hidden_dims), int(num_classes)]
        self.params: dict[str, np.ndarray] = {}
        for i in range(self.num_layers):
            self.params[f"W{i + 1}"] = np.asarray(make(dims[i], dims[i + 1], self.rng), dtype=np.float64)
            self.params[f"b{i + 1}"] = np.zeros(dims[i + 1])
            if normalization is not None and i < self.num_layers - 1:
                self.params[f"gamma{i + 1}"] = np.ones(dims[i + 1])
                self.params[f"beta{i + 1}"] = np.zeros(dims[i + 1])
        self.norm_params = [copy.deepcopy(norm_param or {}) for _ in range(self.num_layers - 1)]
        self.mode: str | None = None

    def loss(self, X: np.ndarray, y: np.ndarray | None = None):
        """Scores (N, C) when y is None; else (loss, grads) with one gradient per parameter."""
        mode = self.mode or ("test" if y is None else "train")
        caches = []
        h = X
        for i in range(1, self.num_layers):
            h, c_aff = affine_forward(h, self.params[f"W{i}"], self.params[f"b{i}"])
            c_norm = c_drop = None
            if self.normalization is not None:
                param = self.norm_params[i - 1]
                param["mode"] = mode
                h, c_norm = self.normalization[0](h, self.params[f"gamma{i}"], self.params[f"beta{i}"], param)
            h, c_relu = relu_forward(h)
            if self.dropout is not None:
                forward, _, p = self.dropout
                param = {"p": p, "mode": mode, "seed": int(self.rng.integers(2**31))}
                h, c_drop = forward(h, param)
            caches.append((c_aff, c_norm, c_relu, c_drop))
        L = self.num_layers
        scores, c_last = affine_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])
        if y is None:
            return scores
        loss, dout = softmax_loss(scores, y)
        grads: dict[str, np.ndarray] = {}
        dout, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dout, c_last)
        for i in range(L - 1, 0, -1):
            c_aff, c_norm, c_relu, c_drop = caches[i - 1]
            if c_drop is not None:
                dout = self.dropout[1](dout, c_drop)
            dout = relu_backward(dout, c_relu)
            if c_norm is not None:
                dout, grads[f"gamma{i}"], grads[f"beta{i}"] = self.normalization[1](dout, c_norm)
            dout, grads[f"W{i}"], grads[f"b{i}"] = affine_backward(dout, c_aff)
        for i in range(1, L + 1):
            W = self.params[f"W{i}"]
            loss += 0.5 * self.reg * float(np.sum(W * W))
            grads[f"W{i}"] = grads[f"W{i}"] + self.reg * W
        return loss, grads

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.argmax(self.loss(X), axis=1)

    def state_dict(self) -> dict:
        return {"params": copy.deepcopy(self.params), "norm_params": copy.deepcopy(self.norm_params)}

    def load_state_dict(self, state: dict) -> None:
        self.params = copy.deepcopy(state["params"])
        self.norm_params = copy.deepcopy(state["norm_params"])


class NumpyOptimizer:
    """Train a numpy network with an update rule: the model ``course_utils.training.Trainer`` fits.

    ``net`` has ``params`` (a dict of arrays) and ``loss(X, y=None)`` (scores, or (loss,
    grads)), as :class:`FullyConnectedNet` and 03's ``TwoLayerNet``. Every parameter gets its
    own copy of ``optim_config``, so stateful rules (momentum, Adam) keep one state per
    parameter. ``schedule(epoch) -> learning rate`` (optional) sets every parameter's
    ``learning_rate`` at the end of each epoch (epochs count from 1) when the optimiser is
    also passed to the Trainer as a callback.
    """

    def __init__(self, net: Any, update_rule: Callable = sgd, optim_config: dict | None = None,
                 schedule: Callable[[int], float] | None = None):
        self.net, self.update_rule, self.schedule = net, update_rule, schedule
        self.configs = {k: copy.deepcopy(optim_config or {}) for k in net.params}

    def step(self, X: np.ndarray, y: np.ndarray) -> float:
        loss, grads = self.net.loss(X, y)
        for k, dw in grads.items():
            self.net.params[k], self.configs[k] = self.update_rule(self.net.params[k], dw, self.configs[k])
        return loss

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.argmax(self.net.loss(X), axis=1)

    def loss(self, X: np.ndarray, y: np.ndarray) -> float:
        mode, self.net.mode = getattr(self.net, "mode", None), "test"
        try:
            return float(self.net.loss(X, y)[0])
        finally:
            self.net.mode = mode

    def state_dict(self) -> dict:
        if callable(getattr(self.net, "state_dict", None)):
            return self.net.state_dict()
        return copy.deepcopy(self.net.params)

    def load_state_dict(self, state: dict) -> None:
        if callable(getattr(self.net, "load_state_dict", None)):
            self.net.load_state_dict(state)
        else:
            self.net.params = copy.deepcopy(state)

    def __call__(self, trainer: Any, epoch: int, logs: dict) -> None:
        if self.schedule is not None:
            lr = float(self.schedule(epoch))
            for config in self.configs.values():
                config["learning_rate"] = lr
