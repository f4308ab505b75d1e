"""Drivers for reinforcement-learning agents on gymnasium environments.

The environment is created inside the driver (it is not plain data), reset
with the case's seed (``ctx["seed"]``), handed to the student's training code,
and the policy that comes back is evaluated greedily on further seeded
episodes.  Agents are usually graded by their mean return against a threshold
(``Threshold("mean_return", ">=", ...)``), with or without a comparison with the
reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import driver


def _policy(agent: Any):
    """A function observation -> action from what the training code returned:
    a Q table ``(S, A)`` (greedy), an object with ``act(obs)``, or a callable."""
    if isinstance(agent, np.ndarray):
        if agent.ndim != 2:
            raise ValueError(f"a Q table must have shape (num_states, num_actions), got {agent.shape}")
        return lambda obs: int(np.argmax(agent[int(obs)]))
    if hasattr(agent, "act"):
        return agent.act
    if callable(agent):
        return agent
    raise TypeError(f"expected a Q table (array), an agent with .act(obs), or a function obs -> action; "
                    f"got {type(agent).__name__}")


@driver
def gym_policy(obj: Any, inputs: dict, ctx: dict) -> Any:
    """For ``train(env, rng, **train) -> policy`` on a gymnasium environment.

    Inputs: ``env_id`` and ``env_kwargs`` (``gymnasium.make``), ``train``
    (keyword arguments of the training function), ``eval_episodes`` and
    optionally ``max_steps`` (per evaluation episode, default 1000).  The
    environment is reset with ``seed=ctx["seed"]`` (and its action space seeded)
    before training; ``rng`` is ``np.random.default_rng(ctx["seed"])``.
    Evaluation episode ``j`` is reset with ``seed=ctx["seed"] + 1 + j``.

    Returns ``{"mean_return": float, "returns": [return of each evaluation episode]}``.
    """
    import gymnasium

    seed = int(ctx.get("seed") or 0)
    env = gymnasium.make(inputs["env_id"], **inputs.get("env_kwargs", {}))
    try:
        env.reset(seed=seed)
        env.action_space.seed(seed)
        agent = obj(env=env, rng=np.random.default_rng(seed), **inputs.get("train", {}))
        act = _policy(agent)
        returns = []
        for j in range(int(inputs.get("eval_episodes", 10))):
            obs, _ = env.reset(seed=seed + 1 + j)
            total, done, steps = 0.0, False, 0
            while not done and steps < int(inputs.get("max_steps", 1000)):
                obs, reward, terminated, truncated, _ = env.step(act(obs))
                total += float(reward)
                done = terminated or truncated
                steps += 1
            returns.append(total)
    finally:
        env.close()
    return {"mean_return": float(np.mean(returns)), "returns": returns}
