"""Scalarizations of per-task losses; reference values computed by hand."""

import pytest
import torch

from mol_diffusion import chebyshev_scalarization, linear_scalarization

# Two tasks (rows) x two samples (columns).
LOSSES = torch.tensor([[1.0, 4.0], [3.0, 2.0]], dtype=torch.float64)
W = [0.25, 0.75]


def test_linear_scalarization_reference_values():
    # 0.25 * 1 + 0.75 * 3 = 2.5 and 0.25 * 4 + 0.75 * 2 = 2.5
    torch.testing.assert_close(
        linear_scalarization(LOSSES, W), torch.tensor([2.5, 2.5], dtype=torch.float64)
    )


def test_chebyshev_scalarization_reference_values():
    # ideal 0: max(0.25 * 1, 0.75 * 3) = 2.25 and max(0.25 * 4, 0.75 * 2) = 1.5
    torch.testing.assert_close(
        chebyshev_scalarization(LOSSES, W), torch.tensor([2.25, 1.5], dtype=torch.float64)
    )
    # ideal (1, 1): max(0.25 * 0, 0.75 * 2) = 1.5 and max(0.25 * 3, 0.75 * 1) = 0.75
    out = chebyshev_scalarization(LOSSES, W, ideal=[1.0, 1.0])
    torch.testing.assert_close(out, torch.tensor([1.5, 0.75], dtype=torch.float64))


def test_chebyshev_scalarization_checks_its_inputs():
    with pytest.raises(ValueError, match=r"ideal must have shape \(2,\)"):
        chebyshev_scalarization(LOSSES, W, ideal=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="weights must sum to 1"):
        chebyshev_scalarization(LOSSES, [0.5, 0.6])
