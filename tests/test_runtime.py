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
