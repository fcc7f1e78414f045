"""One contract over every score model (see mol_diffusion/scores/base.py).

Any implementation guarantees: ``fit`` returns the fitted model; ``score`` returns a finite
(B, dim) tensor in the dtype of x_t; ``sample`` returns a finite (B, dim) tensor; ``num_params`` is
a positive int; the same data and generator seed give identical outputs; rescaling all per-pair
weights by a constant changes nothing; use before ``fit`` raises ``NotFittedError``.
"""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from mol_diffusion import (
    LinearGaussianScore,
    MLPScore,
    NotFittedError,
    RandomFeatureScore,
    ScoreModel,
    make_gaussian_family,
)

MODELS = {
    "linear": lambda: LinearGaussianScore(),
    "random_features": lambda: RandomFeatureScore(48, draws_per_pair=2),
    "mlp": lambda: MLPScore(16, 1, steps=30, batch_size=32),
}


def data(dim, cond_dim, n, seed):
    fam = make_gaussian_family(2, dim, cond_dim, seed=seed)
    g = torch.Generator().manual_seed(seed)
    c0, x0 = fam.sample(0, n, g)
    c1, x1 = fam.sample(1, n, g)
    return torch.cat([c0, c1]), torch.cat([x0, x1]), g


@pytest.mark.parametrize("name", sorted(MODELS))
class TestScoreModelContract:
    @given(
        dim=st.integers(1, 3),
        cond_dim=st.integers(1, 3),
        n=st.integers(8, 40),
        seed=st.integers(0, 2**31 - 1),
        dtype=st.sampled_from([torch.float32, torch.float64]),
    )
    def test_shapes_dtypes_and_finiteness(self, name, dim, cond_dim, n, seed, dtype):
        c, x, g = data(dim, cond_dim, n, seed % 1000)
        model = MODELS[name]()
        assert model.fit(c.to(dtype), x.to(dtype), generator=g) is model
        assert isinstance(model, ScoreModel)
        b = 5
        x_t = torch.randn(b, dim, generator=g, dtype=torch.float64).to(dtype)
        t = torch.linspace(0.01, 1.0, b, dtype=torch.float64).to(dtype)
        s = model.score(x_t, c[:b].to(dtype), t)
        assert s.shape == (b, dim) and s.dtype == dtype and torch.isfinite(s).all()
        draws = model.sample(c[:b].to(dtype), generator=g, steps=10)
        assert draws.shape == (b, dim) and torch.isfinite(draws).all()
        assert isinstance(model.num_params, int) and model.num_params > 0

    @given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.1, 10.0))
    def test_same_seed_same_model_and_weight_scale_invariance(self, name, seed, scale):
        c, x, _ = data(2, 2, 20, seed % 1000)
        w = (
            torch.rand(
                x.shape[0], generator=torch.Generator().manual_seed(seed), dtype=torch.float64
            )
            + 0.1
        )
        fits = [
            MODELS[name]().fit(c, x, weights=weights, generator=torch.Generator().manual_seed(seed))
            for weights in (w, w, scale * w)
        ]
        x_t, t = x[:6] * 0.5, torch.linspace(0.05, 0.9, 6, dtype=torch.float64)
        outs = [m.score(x_t, c[:6], t) for m in fits]
        torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
        torch.testing.assert_close(outs[0], outs[2], rtol=1e-4, atol=1e-5)
        gen = lambda: torch.Generator().manual_seed(seed + 1)  # noqa: E731
        torch.testing.assert_close(
            fits[0].sample(c[:4], generator=gen(), steps=5),
            fits[1].sample(c[:4], generator=gen(), steps=5),
        )

    def test_use_before_fit_raises(self, name):
        model = MODELS[name]()
        x = torch.zeros(2, 1, dtype=torch.float64)
        with pytest.raises(NotFittedError, match="before fit"):
            model.score(x, x, torch.full((2,), 0.5, dtype=torch.float64))
        with pytest.raises(NotFittedError, match="before fit"):
            model.sample(x, generator=torch.Generator())
        with pytest.raises(NotFittedError, match="before fit"):
            _ = model.num_params

    def test_fit_rejects_bad_data(self, name):
        c, x, g = data(2, 2, 10, 0)
        model = MODELS[name]()
        with pytest.raises(ValueError, match="same number of rows"):
            model.fit(c[:-1], x, generator=g)
        bad = x.clone()
        bad[3, 0] = float("nan")
        with pytest.raises(ValueError, match="x must be finite"):
            model.fit(c, bad, generator=g)
        with pytest.raises(ValueError, match="weights must be non-negative"):
            model.fit(c, x, weights=-torch.ones(x.shape[0], dtype=torch.float64), generator=g)
        with pytest.raises(ValueError, match="weights must have shape"):
            model.fit(c, x, weights=torch.ones(3, dtype=torch.float64), generator=g)
        with pytest.raises(ValueError, match="generator"):
            model.fit(c, x, generator=0)
        model.fit(c, x, generator=g)
        with pytest.raises(ValueError, match="x_t must have 2 columns"):
            model.score(torch.zeros(3, 3), c[:3], torch.full((3,), 0.5))
        with pytest.raises(ValueError, match=r"t must lie in \(0, 1\]"):
            model.score(x[:3], c[:3], torch.zeros(3, dtype=torch.float64))
