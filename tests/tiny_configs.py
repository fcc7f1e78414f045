"""Tiny experiment configs shared by the tests of the engine, the CLI and stale tables: a
Gaussian sweep of two cells (labeled-only and oracle, one capacity) that runs in about a second."""

TINY = """
kind = "gaussian"
seed = 9
replicates = 1
methods = ["labeled_only", "oracle"]
n = [8]
m = [32]
risk_draws = 128
[family]
num_tasks = 2
[specialist]
kind = "linear"
[generalist]
kind = "random_features"
capacities = [4]
"""
