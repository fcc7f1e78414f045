r"""Neural score network: an MLP with a sinusoidal time embedding, trained by DSM with Adam.

    eps_hat(x_t, c, t) = MLP([z_x, z_c, emb(t)]),    s = -eps_hat / sigma(t),

where (z_x, z_c) are the scaled inputs of ``InputScaler`` and emb(t) holds sin/cos of t at
``time_features / 2`` geometric frequencies (Vaswani et al., 2017, Sec. 3.5, applied to t).

``preconditioning="edm"`` keeps the inputs and the loss but reads the network output F as a
preconditioned prediction of the clean sample (Karras et al., 2022, Table 1, written for the VP
process with noise level s = sigma / alpha and per-coordinate data variance v = ``var_x``):

    x0_hat = mu_x + c_skip (x_t / alpha - mu_x) + c_out F,
    c_skip = v / (s^2 + v),   c_out = s sqrt(v) / sqrt(s^2 + v),
    eps_hat = (x_t - alpha x0_hat) / sigma.

(c_in (x_t / alpha - mu_x) is exactly z_x.) With eps-prediction a sharp posterior, where c
nearly fixes x_0 (deblurring with little noise), makes the network cancel z_x against a function
of c and amplify the remainder by 1 / sigma; the preconditioned form predicts x_0 directly at
small noise and eps at large noise, so the same network fits such posteriors much better.
Training minimises the weighted per-sample DSM loss ||eps_hat - eps||^2 over random minibatches
with fresh (t, eps) draws; an exponential moving average (EMA) of the weights is used for
evaluation when ``ema_decay`` is set. Every random draw (initialisation, minibatches, noise) comes
from the ``torch.Generator`` passed to ``fit``. Computation is float32; outputs are returned in
the caller's dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from mol_diffusion.nets import (
    MLP,
    StackedMLPs,
    check_training_options,
    pad_stack,
    time_embedding,
)
from mol_diffusion.objectives import dsm_loss
from mol_diffusion.schedules import VPSchedule, check_schedule
from mol_diffusion.scores.base import InputScaler, ScoreModelBase

__all__ = ["MLPScore", "MLPScoreConfig", "fit_batched", "stacked_eps", "time_embedding"]

PRECONDITIONINGS = ("eps", "edm")


@dataclass(frozen=True)
class MLPScoreConfig:
    """Args:
    width: hidden units per layer.
    depth: number of hidden layers (>= 1).
    steps: Adam steps.
    batch_size: pairs per minibatch.
    lr: peak learning rate (cosine decay to 10% over ``steps``).
    ema_decay: EMA decay in [0, 1) (with warm-up), or None to evaluate the raw weights.
    time_features: size of the sinusoidal time embedding (even).
    preconditioning: ``"eps"`` (the network predicts the noise) or ``"edm"`` (preconditioned
        clean-sample prediction; see the module docstring).
    schedule: the forward process.
    """

    width: int = 128
    depth: int = 3
    steps: int = 2000
    batch_size: int = 256
    lr: float = 2e-3
    ema_decay: float | None = 0.995
    time_features: int = 16
    preconditioning: str = "eps"
    schedule: VPSchedule = field(default_factory=VPSchedule)

    def __post_init__(self) -> None:
        if self.preconditioning not in PRECONDITIONINGS:
            raise ValueError(
                f"preconditioning must be one of {PRECONDITIONINGS}, got {self.preconditioning!r}"
            )
        check_training_options(self)
        check_schedule(self.schedule)


def _edm_eps(out, x_t, alpha, sigma, mu, var) -> torch.Tensor:
    """Preconditioned output F -> predicted noise (float32); see the module docstring.

    alpha, sigma: float64, broadcastable to x_t with a trailing axis of 1; mu, var: the data's
    mean and variance per coordinate (``InputScaler.mu_x``, ``var_x``), broadcastable likewise.
    """
    s2 = (sigma / alpha) ** 2
    c_skip, c_out = var / (s2 + var), (s2 * var / (s2 + var)).sqrt()
    x_t64 = x_t.to(torch.float64)
    x0_hat = mu + c_skip * (x_t64 / alpha - mu) + c_out * out.to(torch.float64)
    return ((x_t64 - alpha * x0_hat) / sigma).to(torch.float32)


class MLPScore(ScoreModelBase):
    """Neural epsilon-prediction score model; see the module docstring."""

    def __init__(
        self,
        width: int = 128,
        depth: int = 3,
        *,
        steps: int = 2000,
        batch_size: int = 256,
        lr: float = 2e-3,
        ema_decay: float | None = 0.995,
        time_features: int = 16,
        preconditioning: str = "eps",
        schedule: VPSchedule | None = None,
    ):
        super().__init__()
        self.config = MLPScoreConfig(
            width,
            depth,
            steps,
            batch_size,
            lr,
            ema_decay,
            time_features,
            preconditioning,
            schedule or VPSchedule(),
        )

    def _inputs(self, x_t, c, t) -> torch.Tensor:
        t64 = t.to(torch.float64)
        alpha, sigma = self.schedule.alpha(t64), self.schedule.sigma(t64)
        z_x, z_c = self.scaler(x_t, c, alpha, sigma)
        emb = time_embedding(t, self.config.time_features)
        return torch.cat([z_x.to(torch.float32), z_c.to(torch.float32), emb], dim=1)

    def _eps_hat(self, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Network output (B, dim) -> predicted noise (B, dim), float32."""
        if self.config.preconditioning == "eps":
            return out
        t64 = t.to(torch.float64)
        alpha = self.schedule.alpha(t64)[:, None]
        sigma = self.schedule.sigma(t64)[:, None]
        return _edm_eps(out, x_t, alpha, sigma, self.scaler.mu_x, self.scaler.var_x)

    def _fit(self, c, x, weights, generator, run_name) -> None:
        _fit_stacked([self], [(c, x, weights)], [generator], [run_name])

    def eps(self, x_t: torch.Tensor, c: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predicted noise, shape (B, dim), float32."""
        self._require_fitted()
        with torch.no_grad():
            return self._eps_hat(self.net(self._inputs(x_t, c, t)), x_t, t)

    def _score(self, x_t, c, t) -> torch.Tensor:
        sigma = self.schedule.sigma(t.to(torch.float64))[:, None]
        return -self.eps(x_t, c, t).to(torch.float64) / sigma

    @property
    def num_params(self) -> int:
        self._require_fitted()
        return sum(p.numel() for p in self.net.parameters())


def fit_batched(models, data, generators, *, run_names=None) -> list[MLPScore]:
    """Fit several MLPScore models at once as one stacked network (batched matrix products).

    Model b is trained on its own pairs with its own generator, drawing its initialisation,
    minibatches, times and noise in the same order as ``models[b].fit``. Adam and the EMA act
    elementwise, the models share no parameter, and ``MLPScore.fit`` itself runs this stacked
    fit with one model, so the result is bit-for-bit the one-at-a-time fit (tested in
    ``tests/test_batched.py``; it relies on a batched product computing each model's slice as
    the product of one model would). For many small models (all seeds of a sweep cell, all
    tasks' specialists) this amortizes the per-step overhead that dominates small fits on a CPU.

    Args:
        models: unfitted ``MLPScore`` instances with identical configs.
        data: per model, (c (n_b, cond_dim), x (n_b, dim), weights (n_b,) or None); dim and
            cond_dim shared by all.
        generators: one ``torch.Generator`` per model.
        run_names: names for error messages (default ``batch[b]``).
    Returns:
        the fitted models (the same objects).
    """
    from mol_diffusion._validation import check_generator, check_pairs, check_sample_weights

    models = list(models)
    if not models or not all(isinstance(m, MLPScore) for m in models):
        raise ValueError("models must be a non-empty sequence of MLPScore")
    if len(data) != len(models) or len(generators) != len(models):
        raise ValueError(
            f"data and generators must hold one entry per model ({len(models)}), got "
            f"{len(data)} and {len(generators)}"
        )
    cfg = models[0].config
    if any(m.config != cfg for m in models):
        raise ValueError("models must share one config to be fitted as a batch")
    names = run_names or [f"batch[{b}]" for b in range(len(models))]
    checked = []
    for b, item in enumerate(data):
        if not isinstance(item, tuple | list) or len(item) != 3:
            raise ValueError(f"data[{b}] must be a (c, x, weights) triple")
        c, x = check_pairs(item[0], item[1])
        checked.append((c, x, check_sample_weights(item[2], x.shape[0])))
        check_generator(generators[b], f"generators[{b}]")
    dims = {(x.shape[1], c.shape[1]) for c, x, _ in checked}
    if len(dims) != 1:
        raise ValueError(f"every model's data must share (dim, cond_dim), got {sorted(dims)}")
    _fit_stacked(models, checked, generators, names)
    return models


def _fit_stacked(models, checked, generators, names) -> None:
    """Train ``models`` (one config) on validated (c, x, weights) triples as one stacked
    network; ``MLPScore.fit`` is the case of one model, so single and batched fits run the
    same operations per model."""
    cfg = models[0].config
    dim, cond_dim = checked[0][1].shape[1], checked[0][0].shape[1]
    count, sched = len(models), cfg.schedule
    nets = []
    for model, (c, x, w), g in zip(models, checked, generators, strict=True):
        model._dims = None
        model.scaler = InputScaler.fit(c, x, w)
        with torch.random.fork_rng(devices=[]):
            net = MLP(dim + cond_dim + cfg.time_features, dim, cfg.width, cfg.depth)
        net.reset_parameters(g)  # the same draws, in the same order, as MLPScore.fit
        nets.append(net)
    stacked = StackedMLPs(nets)
    # every model's pairs and weight scales padded to (B, N_max, .) and flattened, so one
    # gather per step draws all B minibatches (exact: the rows each model would draw alone)
    x32 = pad_stack([x.to(torch.float32) for _, x, _ in checked])
    c32 = pad_stack([c.to(torch.float32) for c, _, _ in checked])
    scale = pad_stack(
        [
            torch.ones(x.shape[0]) if w is None else (w / w.mean()).to(torch.float32)
            for _, x, w in checked
        ]
    )
    sizes = [x.shape[0] for _, x, _ in checked]
    offsets = torch.arange(count)[:, None] * x32.shape[1]
    x32, c32, scale = x32.flatten(0, 1), c32.flatten(0, 1), scale.flatten(0, 1)
    # every model's scaler statistics stacked to (B, 1, .), so one call scales (B, bs) rows
    scaler = InputScaler(
        **{
            name: torch.stack([getattr(m.scaler, name) for m in models])[:, None]
            for name in ("mu_x", "var_x", "mu_c", "sd_c")
        }
    )
    bs, t_min = cfg.batch_size, sched.t_min
    idx = torch.empty(count, bs, dtype=torch.int64)
    u = torch.empty(count, bs)
    eps = torch.empty(count, bs, dim)

    def losses(step, forward) -> torch.Tensor:
        for b, g in enumerate(generators):  # each model's own draws, in fit's order
            torch.randint(sizes[b], (bs,), generator=g, out=idx[b])
            torch.rand(bs, generator=g, out=u[b])
            torch.randn(bs, dim, generator=g, out=eps[b])
        t = t_min + (1 - t_min) * u  # (B, bs) float32
        flat = (idx + offsets).reshape(-1)  # row idx[b, i] of model b in the padded stack
        x0 = x32.index_select(0, flat).reshape(count, bs, dim)
        cc = c32.index_select(0, flat).reshape(count, bs, cond_dim)
        alpha, sigma = sched.alpha_sigma(t)
        x_t = alpha[..., None] * x0 + sigma[..., None] * eps
        a64, s64 = sched.alpha_sigma(t.to(torch.float64))
        z_x, z_c = scaler(x_t, cc, a64, s64)
        emb = time_embedding(t.reshape(-1), cfg.time_features).reshape(count, bs, -1)
        out = forward(torch.cat([z_x.to(torch.float32), z_c.to(torch.float32), emb], dim=-1))
        if cfg.preconditioning == "edm":
            out = _edm_eps(out, x_t, a64[..., None], s64[..., None], scaler.mu_x, scaler.var_x)
        per_sample = dsm_loss(
            (-out / sigma[..., None]).reshape(-1, dim), eps.reshape(-1, dim), sigma.reshape(-1)
        ).reshape(count, bs)
        return (scale.index_select(0, flat).reshape(count, bs) * per_sample).mean(dim=1)

    final = stacked.train(
        losses, steps=cfg.steps, lr=cfg.lr, ema_decay=cfg.ema_decay, run_names=names
    )
    for b, (model, net) in enumerate(zip(models, nets, strict=True)):
        model.net = net.requires_grad_(False).eval()
        model.final_loss = float(final[b])
        model._dims = (dim, cond_dim)
    return models


def stacked_eps(models: Sequence[MLPScore]) -> Callable[..., torch.Tensor]:
    """Every model's predicted noise in one stacked pass (one ``baddbmm`` per layer).

    Args:
        models: B fitted ``MLPScore`` of one config and one (dim, cond_dim).
    Returns:
        ``eps(x_t (B, R, dim), c (R, cond_dim), t (R,)) -> (B, R, dim)`` float32, where row r of
        slice b is model b's ``eps`` at (x_t[b, r], c[r], t[r]): the same operations as
        ``MLPScore.eps`` through the stacked layers of ``StackedMLPs.forward`` (a batched
        product computes each model's slice as the product of one model would, as the stacked
        fit relies on; ``tests/test_batched.py``). Evaluating B models costs about as many
        operator calls as one, which is what makes sampling many small models fast on a CPU.
    """
    models = list(models)
    if not models or not all(isinstance(m, MLPScore) for m in models):
        raise ValueError("models must be a non-empty sequence of MLPScore")
    dims = {m._require_fitted() for m in models}
    if len(dims) != 1 or any(m.config != models[0].config for m in models):
        raise ValueError("models must share one config and one (dim, cond_dim) to be stacked")
    cfg = models[0].config
    params = []
    linears = [[m for m in model.net.body if isinstance(m, torch.nn.Linear)] for model in models]
    for layer in range(len(linears[0])):
        params.append(torch.stack([ls[layer].weight.detach().T for ls in linears]))
        params.append(torch.stack([ls[layer].bias.detach() for ls in linears]))
    scaler = InputScaler(
        **{
            name: torch.stack([getattr(m.scaler, name) for m in models])[:, None]
            for name in ("mu_x", "var_x", "mu_c", "sd_c")
        }
    )
    sched, count = cfg.schedule, len(models)
    # c's scaled float32 copy, kept while the caller passes the same c unchanged by in-place
    # torch operations (a sampler passes one c for every step of a run): keyed by the tensor and
    # its version counter. Writes that bypass the counter (through .numpy() or .data) are not
    # seen; inference tensors have no counter and are scaled at every call.
    kept: tuple = (None, -1, None)

    def eps(x_t: torch.Tensor, c: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        nonlocal kept
        rows = t.shape[0]
        t64 = t.to(torch.float64)
        alpha, sigma = sched.alpha_sigma(t64)
        version = -1 if c.is_inference() else c._version
        held, held_version, held_z_c = kept  # one read: a concurrent call replaces, not edits
        fresh = held is not c or held_version != version or version < 0
        z_x, z_c = scaler(x_t, c[None].expand(count, -1, -1), alpha, sigma, scale_c=fresh)
        if fresh:
            z_c = z_c.to(torch.float32)
            kept = (c, version, z_c)
        else:
            z_c = held_z_c
        emb = time_embedding(t, cfg.time_features)[None].expand(count, -1, -1)
        z = torch.cat([z_x.to(torch.float32), z_c, emb], dim=-1)
        with torch.no_grad():
            out = StackedMLPs.forward(z, params)
        if cfg.preconditioning == "eps":
            return out
        a, s = alpha[:, None].expand(rows, 1), sigma[:, None].expand(rows, 1)
        return _edm_eps(out, x_t, a, s, scaler.mu_x, scaler.var_x)

    return eps
