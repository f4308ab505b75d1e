"""Tests for course_utils.runtime: device choice, seeding, environment line."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from course_utils import runtime
from course_utils.runtime import describe_environment, device, seed_everything


@pytest.fixture(autouse=True)
def no_device_env(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)


def test_default_device_is_available():
    dev = device()
    assert isinstance(dev, torch.device)
    torch.zeros(2, device=dev)  # usable


def test_order_cuda_then_mps_then_cpu(monkeypatch):
    available = {"cuda": False, "mps": True, "cpu": True}
    monkeypatch.setattr(runtime, "_available", lambda kind: available[kind])
    assert device().type == "mps"
    available["cuda"] = True
    assert device().type == "cuda"
    available.update(cuda=False, mps=False)
    assert device().type == "cpu"


def test_env_var_and_prefer_override(monkeypatch):
    monkeypatch.setattr(runtime, "_available", lambda kind: True)
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert device() == torch.device("cpu")
    assert device("mps").type == "mps"  # prefer beats the environment variable


def test_unknown_device_names_the_choices():
    with pytest.raises(ValueError, match="cuda, mps, cpu"):
        device("gpu")


def test_unknown_env_var_names_the_variable(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="COURSE_DEVICE"):
        device()


def test_unavailable_device_is_rejected(monkeypatch):
    monkeypatch.setattr(runtime, "_available", lambda kind: kind == "cpu")
    with pytest.raises(ValueError, match="not available.*cpu"):
        device("cuda")


def test_seed_everything_makes_every_generator_repeat():
    def draw(seed):
        rng = seed_everything(seed)
        return random.random(), np.random.rand(), torch.rand(1).item(), rng.random()

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)
    assert draw(5)[3] == np.random.default_rng(5).random()


@pytest.mark.parametrize("bad", [-1, 1.5, "0"])
def test_seed_everything_rejects_bad_seeds(bad):
    with pytest.raises((TypeError, ValueError)):
        seed_everything(bad)


def test_describe_environment_is_one_line():
    line = describe_environment()
    assert "\n" not in line
    for part in (np.__version__, torch.__version__, str(device())):
        assert part in line


def _blas_threads(env_extra: dict) -> int:
    import json
    import os
    import subprocess
    import sys

    code = ("import course_utils, json; from threadpoolctl import threadpool_info; "
            "print(json.dumps([i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']))")
    env = {k: v for k, v in os.environ.items() if k != "COURSE_BLAS_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], env={**env, **env_extra}, capture_output=True,
                         text=True, check=True).stdout
    threads = json.loads(out)
    assert threads, "numpy's BLAS was not found by threadpoolctl"
    return max(threads)


def test_importing_the_course_keeps_numpys_blas_on_one_thread():
    """Timing demos on a 2-core laptop: BLAS threads and torch's pool must not oversubscribe."""
    assert _blas_threads({}) == 1
    assert _blas_threads({"COURSE_BLAS_THREADS": "2"}) == 2


def test_a_bad_thread_count_says_how_to_fix_it(monkeypatch):
    import pytest

    from course_utils.runtime import configure_threads

    monkeypatch.setenv("COURSE_BLAS_THREADS", "many")
    with pytest.raises(ValueError, match="COURSE_BLAS_THREADS=2"):
        configure_threads()


def test_quick_mode_and_budget(monkeypatch):
    from course_utils import budget, quick_mode

    monkeypatch.delenv("COURSE_QUICK", raising=False)
    assert not quick_mode() and budget(30, 2) == 30
    for off in ("0", "false", ""):
        monkeypatch.setenv("COURSE_QUICK", off)
        assert not quick_mode()
    monkeypatch.setenv("COURSE_QUICK", "1")
    assert quick_mode() and budget(30, 2) == 2
