"""Hidden tests for 04_optimization (solutions/04_optimization/optimization.ipynb).

The six update rules ``rule(w, dw, config=None) -> (next_w, config)`` are driven by the
generic ``update_steps`` driver: the rule is called once per gradient, each time with the
weights and the config the previous call returned, as a training loop does, and every
intermediate weight and the final config (hyper-parameters with their defaults, the state:
velocity, cache, m, v, t) are compared with the reference.  Cases: the defaults
(``config=None``), a config that sets only some keys, long runs (up to 200 steps, where a
state that is not carried over or a bias correction with the wrong ``t`` shows), shapes the
notebook never uses ((1,), (2, 3, 4), (3, 1, 5, 2)), gradients as large as 1e3 and as
small as 1e-6, exact zeros in a coordinate (AdaGrad's and RMSProp's epsilon), and a gradient
that changes sign every step.

The schedules are called on single epochs (Python ints) and on arrays of epochs, past the
end of the cosine and of the warm-up, with step sizes and factors the notebook never uses.
The initialisers are called with ``rng = np.random.default_rng(seed)``: the weights must be
exactly one draw ``std * rng.standard_normal((fan_in, fan_out))``, as the notebook states;
one case is large enough (2000 x 1000) that the standard deviation is visible.

Rules (stated in every docstring and checked by the visible self-checks): no Python loops,
no torch and not course_utils.layers (which ships its own sgd, sgd_momentum and adam).
"""

from __future__ import annotations

import numpy as np

from grader.spec import Case, Exercise, Forbid, NoLoops, Tol

ASSIGNMENT = "04_optimization"

NO_TORCH_NO_LAYERS = Forbid(("torch", "course_utils.layers"))
RULES = (NoLoops(), NO_TORCH_NO_LAYERS)

# The hyper-parameters each rule reads (a case's config sets some or all of them).
HYPER = {
    "sgd": {"learning_rate": 0.07},
    "sgd_momentum": {"learning_rate": 0.03, "momentum": 0.75},
    "nesterov_momentum": {"learning_rate": 0.02, "momentum": 0.95},
    "adagrad": {"learning_rate": 0.3, "epsilon": 1e-6},
    "rmsprop": {"learning_rate": 3e-3, "decay_rate": 0.9, "epsilon": 1e-7},
    "adam": {"learning_rate": 2e-2, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-7},
}


def _rule_cases(rule: str):
    hyper = HYPER[rule]
    first = next(iter(hyper))

    def cases(rng: np.random.Generator) -> list[Case]:
        def run(shape, steps, scale=1.0, config=None):
            w = rng.normal(size=shape)
            return {"w": w, "dws": [scale * rng.normal(size=shape) for _ in range(steps)],
                    "config": None if config is None else dict(config)}

        zeros = run((3, 4), 12, config=hyper)
        for dw in zeros["dws"]:
            dw[0, :] = 0.0  # a row of weights that never gets a gradient
        flip = run((6,), 40, config=hyper)
        flip["dws"] = [(-1.0) ** k * np.abs(flip["dws"][0]) for k in range(40)]
        return [
            Case(run((4, 5), 3), label="defaults (config=None), w (4, 5), 3 steps"),
            Case(run((7,), 50, config=hyper), label="given hyper-parameters, w (7,), 50 steps"),
            Case(run((2, 3, 4), 20, config={first: hyper[first]}),
                 label=f"a config with only {first!r} (fill in the other defaults), w (2, 3, 4), 20 steps"),
            Case(run((1,), 200, config=hyper), label="a single weight, 200 steps"),
            Case(run((3, 1, 5, 2), 10, config=hyper), label="w (3, 1, 5, 2), 10 steps"),
            Case(run((5, 3), 15, scale=1e3, config=hyper), label="large gradients (scale 1e3), 15 steps"),
            Case(run((4,), 15, scale=1e-6, config=hyper), label="tiny gradients (scale 1e-6), 15 steps"),
            Case(zeros, label="a row of exactly zero gradients, 12 steps"),
            Case(flip, label="a gradient that changes sign every step, 40 steps"),
        ]

    return cases


def _epochs(rng: np.random.Generator, top: int) -> np.ndarray:
    return np.sort(rng.integers(0, top, size=9))


def _step_cases(rng):
    return [
        Case({"epoch": 0, "lr0": 0.1, "step_size": 10}, label="epoch 0, default gamma"),
        Case({"epoch": 9, "lr0": 0.1, "step_size": 10}, label="the last epoch before the first cut"),
        Case({"epoch": 10, "lr0": 0.1, "step_size": 10}, label="exactly at the first cut"),
        Case({"epoch": 37, "lr0": 0.5, "step_size": 7, "gamma": 0.5}, label="epoch 37, step_size 7, gamma 0.5"),
        Case({"epoch": np.arange(30), "lr0": 0.2, "step_size": 4, "gamma": 0.3}, label="an array of epochs 0..29"),
        Case({"epoch": _epochs(rng, 100), "lr0": 1e-3, "step_size": 1, "gamma": 0.9},
             label="step_size 1, an array of epochs"),
    ]


def _exp_cases(rng):
    return [
        Case({"epoch": 0, "lr0": 0.1, "gamma": 0.95}, label="epoch 0"),
        Case({"epoch": 17, "lr0": 0.3, "gamma": 0.9}, label="epoch 17"),
        Case({"epoch": 250, "lr0": 1.0, "gamma": 0.99}, label="epoch 250"),
        Case({"epoch": np.arange(40), "lr0": 5e-3, "gamma": 0.8}, label="an array of epochs 0..39"),
        Case({"epoch": _epochs(rng, 60), "lr0": 0.05, "gamma": 1.0}, label="gamma 1 (constant)"),
    ]


def _cosine_cases(rng):
    return [
        Case({"epoch": 0, "lr0": 0.1, "num_epochs": 50}, label="epoch 0"),
        Case({"epoch": 25, "lr0": 0.1, "num_epochs": 50}, label="half-way"),
        Case({"epoch": 50, "lr0": 0.1, "num_epochs": 50}, label="the last epoch (lr_min)"),
        Case({"epoch": 13, "lr0": 0.4, "num_epochs": 30, "lr_min": 1e-3}, label="lr_min 1e-3"),
        Case({"epoch": np.arange(25), "lr0": 0.02, "num_epochs": 20, "lr_min": 2e-3},
             label="an array of epochs running past num_epochs"),
        Case({"epoch": 80, "lr0": 1.0, "num_epochs": 30}, label="long past num_epochs"),
        Case({"epoch": _epochs(rng, 100), "lr0": 3e-4, "num_epochs": 100}, label="an array of epochs, 100 epochs"),
    ]


def _warmup_cases(rng):
    return [
        Case({"epoch": 0, "lr0": 0.1, "warmup_epochs": 5}, label="epoch 0, default start_factor"),
        Case({"epoch": 3, "lr0": 0.1, "warmup_epochs": 5}, label="during the warm-up"),
        Case({"epoch": 5, "lr0": 0.1, "warmup_epochs": 5}, label="the end of the warm-up"),
        Case({"epoch": 40, "lr0": 0.3, "warmup_epochs": 8, "start_factor": 0.25}, label="after the warm-up"),
        Case({"epoch": np.arange(15), "lr0": 2e-3, "warmup_epochs": 10, "start_factor": 0.01},
             label="an array of epochs through and past the warm-up"),
        Case({"epoch": _epochs(rng, 5), "lr0": 1.0, "warmup_epochs": 1, "start_factor": 0.5},
             label="one warm-up epoch"),
    ]


def _init_cases(rng):
    shapes = [(64, 100), (100, 10), (1, 7), (9, 1), (300, 300), (2000, 1000)]
    return [Case({"fan_in": fi, "fan_out": fo, "seed": int(rng.integers(2**31))}, label=f"fan_in={fi}, fan_out={fo}")
            for fi, fo in shapes]


def _rule_exercise(rule: str, hint: str) -> Exercise:
    return Exercise(grade_id=f"test_{rule}", name=rule, cases=_rule_cases(rule), driver="update_steps",
                    outputs={"w": Tol(rtol=1e-7, atol=1e-10), "config": Tol(rtol=1e-7, atol=1e-12)},
                    rules=RULES, hint=hint)


def _schedule_exercise(name: str, cases, hint: str) -> Exercise:
    return Exercise(grade_id=f"test_{name}", name=name, cases=cases, outputs=("lr",), rules=RULES,
                    rtol=1e-9, atol=1e-14, hint=hint)


EXERCISES = [
    _rule_exercise("sgd", "next_w = w - config['learning_rate'] * dw"),
    _rule_exercise("sgd_momentum", "v = momentum * v - learning_rate * dw; next_w = w + v; store v in "
                                   "config['velocity']"),
    _rule_exercise("nesterov_momentum", "v_prev = v; v = momentum * v - learning_rate * dw; "
                                        "next_w = w - momentum * v_prev + (1 + momentum) * v"),
    _rule_exercise("adagrad", "cache += dw**2 (kept in config['cache']); "
                              "next_w = w - learning_rate * dw / (sqrt(cache) + epsilon)"),
    _rule_exercise("rmsprop", "cache = decay_rate * cache + (1 - decay_rate) * dw**2; "
                              "next_w = w - learning_rate * dw / (sqrt(cache) + epsilon)"),
    _rule_exercise("adam", "t += 1 first (the first update uses t = 1); m and v as moving averages; "
                           "m_hat = m / (1 - beta1**t), v_hat = v / (1 - beta2**t); "
                           "next_w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)"),
    _schedule_exercise("step_decay", _step_cases, "lr0 * gamma ** (epoch // step_size), integer division"),
    _schedule_exercise("exponential_decay", _exp_cases, "lr0 * gamma ** epoch"),
    _schedule_exercise("cosine_decay", _cosine_cases,
                       "lr_min + 0.5 * (lr0 - lr_min) * (1 + cos(pi * e / num_epochs)) with "
                       "e = np.minimum(epoch, num_epochs)"),
    _schedule_exercise("linear_warmup", _warmup_cases,
                       "lr0 * (start_factor + (1 - start_factor) * np.minimum(epoch, warmup_epochs) / warmup_epochs)"),
    Exercise(grade_id="test_xavier_init", name="xavier_init", cases=_init_cases, driver="initializer",
             outputs={"W": Tol(rtol=1e-9, atol=1e-12), "next_draw": Tol(exact=True)}, rules=RULES,
             hint="np.sqrt(2 / (fan_in + fan_out)) * rng.standard_normal((fan_in, fan_out)): one draw, "
                  "nothing else from rng"),
    Exercise(grade_id="test_kaiming_init", name="kaiming_init", cases=_init_cases, driver="initializer",
             outputs={"W": Tol(rtol=1e-9, atol=1e-12), "next_draw": Tol(exact=True)}, rules=RULES,
             hint="np.sqrt(2 / fan_in) * rng.standard_normal((fan_in, fan_out)): one draw, nothing else from rng"),
]

#: A wrong answer for an exercise no other one calls.
WRONG_ANSWERS = {
    "adagrad": "def adagrad(w, dw, config=None):\n"
               "    config = {} if config is None else config\n"
               "    config.setdefault('learning_rate', 1e-2)\n"
               "    return w - config['learning_rate'] * dw, config\n",
}
