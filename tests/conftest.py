"""Shared test configuration: deterministic CPU runs and a hypothesis profile for the fast suite."""

import os

import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(int(os.environ.get("MOL_DIFFUSION_TEST_THREADS", "2")))

# Estimator properties are costly to evaluate: fewer examples, no per-example deadline
# (shared CI machines are noisy), and a fixed derandomized seed so a red run can be replayed.
settings.register_profile(
    "fast",
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))
