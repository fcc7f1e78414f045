r"""Pilot comparison of restoration specialists and baselines on a validation split (no test image).

For each dataset (digits, 8 x 8; scikit-image patches, 16 x 16) the image_restoration tasks
(denoise sigma 0.3, inpaint half the pixels, deblur width 1 px + noise 0.02) are degraded on a
validation part carved, by source, out of the train split (``restorers.validation_split``, 20% of
the train sources, seed 0); n pairs per task are drawn from the rest of the train split. Every
method is fitted on those pairs only and scored by the mean per-image PSNR and SSIM of its
clipped estimate on the validation images (constant images dropped: nothing to restore):

- per task: the Gaussian-prior specialist's exact posterior mean (``scores.prior``) with each
  shrinkage target, per-task ridge (leave-one-out penalty), the classical scikit-image method with
  the operator known (``restorers.ClassicalRestorer``), the degraded input;
- blind, on the pairs pooled over tasks: ridge, and the residual CNN trained with MSE;
- ``--agreement``: the oracle also scored by averages of sampled restorations, to measure what
  the one-pass mean loses against them;
- ``conv``: the convolutional diffusion generalist (``scores.convnet.ConvScore``, settings
  ``GENERALIST``, scored by its one-pass posterior mean) three ways: oracle (``--m`` true pairs
  per task from the unlabeled split, fitted once), labeled-only (the pooled n pairs per task) and
  two-stage (each task's Gaussian-prior specialist, target ``--target``, fitted on its n pairs,
  labels ``--m`` conditions of the unlabeled split with ``--draws`` exact posterior draws each).

    python experiments/search_restoration_defaults.py [--dataset digits] [--n 8,64,512]
        [--replicates 3] [--methods prior,ridge,classical,blind_ridge,cnn,degraded,conv]
        [--m 600] [--draws 8] [--target stationary] [--threads 1]

Replicate r draws its pairs and degradation noise with seed ``PILOT_SEED + 1000 r + k`` (task k)
and fits the CNN and labeled-only with ``PILOT_SEED + 1000 r + 999`` (common random numbers:
the same minibatch rows and noise for both), two-stage with
``PILOT_SEED + 1000 r + 998``, the oracle's pairs and fit with ``PILOT_SEED + 600 + k`` and
``PILOT_SEED + 610``; the validation degradations use ``PILOT_SEED - 1``. PILOT_SEED is used
by no experiment. Writes ``experiments/results/pilot/restoration_defaults_<dataset>.csv`` (one
row per method, n, replicate and task; the oracle's n is 0) and prints the task-averaged means.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from mol_diffusion.kinds.restoration import RestorationSpec
from mol_diffusion.metrics import posterior_mean
from mol_diffusion.paths import RESULTS
from mol_diffusion.restorers import (
    BlindCNNRestorer,
    ClassicalRestorer,
    DegradedInput,
    RidgeRestorer,
    restoration_metrics,
    validation_split,
)
from mol_diffusion.scores.convnet import ConvScore
from mol_diffusion.scores.prior import TARGETS, GaussianPriorScore

PILOT_SEED = 20261280
TASKS = (
    ("denoise", (("sigma", 0.3),)),
    ("inpaint", (("fraction", 0.5),)),
    ("deblur", (("sigma", 0.02), ("width", 1.0))),
)
METHODS = ("prior", "ridge", "classical", "blind_ridge", "cnn", "degraded", "conv")
GENERALIST = dict(width=32, depth=1, steps=2000, batch_size=128)  # ConvScore, every method


def run(
    dataset: str,
    ns: list[int],
    replicates: int,
    methods: list[str],
    *,
    m: int = 600,
    draws: int = 8,
    target: str = "stationary",
    agreement: tuple[tuple[int, int], ...] = (),
) -> pd.DataFrame:
    spec = RestorationSpec(tasks=TASKS, dataset=dataset)
    fam = spec.build()
    shape = spec.image_shape
    fit_idx, val_idx = validation_split(fam)
    # a constant image has nothing to restore, and inpainting a black one is exact (infinite
    # PSNR): such validation images are dropped (none on digits; 3 all-black patches)
    flat = fam.images[val_idx].flatten(1)
    constant = (flat.max(1).values == flat.min(1).values).numpy()
    if constant.any():
        print(f"{dataset}: {int(constant.sum())} constant validation images dropped")
        val_idx = val_idx[~constant]
    g_val = torch.Generator().manual_seed(PILOT_SEED - 1)
    x_val = fam.images[val_idx]
    val = [
        (op(x_val, g_val).reshape(len(val_idx), -1), x_val.reshape(len(val_idx), -1))
        for op in fam.operators
    ]
    print(f"{dataset}: {len(fit_idx)} train images for pairs, {len(val_idx)} validation images")
    rows = []

    def score(method, n, rep, k, estimate, seconds):
        psnr, ssim = restoration_metrics(estimate, val[k][1], shape)
        rows.append(
            dict(
                dataset=dataset,
                method=method,
                n=n,
                replicate=rep,
                task=k,
                psnr=psnr.mean(),
                ssim=ssim.mean(),
                seconds=seconds,
            )
        )

    unlabeled = fam.splits["unlabeled"]
    if "conv" in methods:  # the oracle: m true pairs per task of the unlabeled split, once
        oracle_pairs = []
        for k, op in enumerate(fam.operators):
            g = torch.Generator().manual_seed(PILOT_SEED + 600 + k)
            pick = unlabeled[torch.randperm(len(unlabeled), generator=g)[:m].numpy()]
            x = fam.images[pick]
            oracle_pairs.append((op(x, g).reshape(m, -1), x.reshape(m, -1)))
        t0 = time.perf_counter()
        oracle = ConvScore(shape, **GENERALIST).fit(
            torch.cat([p[0] for p in oracle_pairs]),
            torch.cat([p[1] for p in oracle_pairs]),
            generator=torch.Generator().manual_seed(PILOT_SEED + 610),
        )
        seconds = time.perf_counter() - t0
        for k in range(len(val)):
            score("conv_oracle", 0, 0, k, oracle.posterior_mean_one_pass(val[k][0]), seconds)
        g = torch.Generator().manual_seed(PILOT_SEED + 620)
        for draws_k, steps_k in agreement:  # the one-pass mean against sampled restorations
            for k in range(len(val)):
                t0 = time.perf_counter()
                est = posterior_mean(oracle, val[k][0], samples=draws_k, steps=steps_k, generator=g)
                name = f"conv_oracle_{draws_k}x{steps_k}"
                score(name, 0, 0, k, est, time.perf_counter() - t0)
        db = np.mean([r["psnr"] for r in rows if r["method"] == "conv_oracle"])
        print(
            f"  conv oracle (m = {m} true pairs per task, p_gen {oracle.num_params}): "
            f"{db:.2f} dB, {seconds:.0f} s"
        )
    for n in ns:
        if n > len(fit_idx):
            raise ValueError(f"n = {n} exceeds the {len(fit_idx)} images left for pairs")
        for rep in range(replicates):
            pairs = []
            for k, op in enumerate(fam.operators):
                g = torch.Generator().manual_seed(PILOT_SEED + 1000 * rep + k)
                pick = fit_idx[torch.randperm(len(fit_idx), generator=g)[:n].numpy()]
                x = fam.images[pick]
                pairs.append((op(x, g).reshape(n, -1), x.reshape(n, -1), g))
            for k, (c, x, g) in enumerate(pairs):
                cv = val[k][0]
                per_task = {}
                if "prior" in methods:
                    for prior_target in TARGETS:
                        per_task[f"prior_{prior_target}"] = GaussianPriorScore(
                            shape, target=prior_target
                        )
                if "ridge" in methods:
                    per_task["ridge"] = RidgeRestorer()
                if "classical" in methods:
                    per_task["classical"] = ClassicalRestorer(fam.operators[k], shape)
                if "degraded" in methods:
                    per_task["degraded"] = DegradedInput()
                for name, model in per_task.items():
                    t0 = time.perf_counter()
                    model.fit(c, x, generator=g)
                    est = model.mean(cv) if hasattr(model, "mean") else model.restore(cv)
                    score(name, n, rep, k, est, time.perf_counter() - t0)
            c_all = torch.cat([p[0] for p in pairs])
            x_all = torch.cat([p[1] for p in pairs])
            blind = {}
            if "blind_ridge" in methods:
                blind["blind_ridge"] = RidgeRestorer()
            if "cnn" in methods:
                blind["blind_cnn"] = BlindCNNRestorer(shape)
            if "conv" in methods:
                blind["conv_labeled_only"] = ConvScore(shape, **GENERALIST)
            for name, model in blind.items():
                t0 = time.perf_counter()
                g = torch.Generator().manual_seed(PILOT_SEED + 1000 * rep + 999)
                model.fit(c_all, x_all, generator=g)
                seconds = time.perf_counter() - t0
                for k in range(len(pairs)):
                    cv = val[k][0]
                    est = model.restore(cv) if hasattr(model, "restore") else None
                    est = model.posterior_mean_one_pass(cv) if est is None else est
                    score(name, n, rep, k, est, seconds)
            if "conv" in methods:  # two-stage: specialists' exact draws for m conditions
                t0 = time.perf_counter()
                g = torch.Generator().manual_seed(PILOT_SEED + 1000 * rep + 998)
                conds, labels = [], []
                for k, (c, x, _) in enumerate(pairs):
                    spec_k = GaussianPriorScore(shape, target=target).fit(c, x, generator=g)
                    pick = unlabeled[torch.randperm(len(unlabeled), generator=g)[:m].numpy()]
                    cond = fam.operators[k](fam.images[pick], g).reshape(m, -1).repeat(draws, 1)
                    conds.append(cond)
                    labels.append(spec_k.sample_exact(cond, generator=g))
                model = ConvScore(shape, **GENERALIST).fit(
                    torch.cat(conds), torch.cat(labels), generator=g
                )
                seconds = time.perf_counter() - t0
                for k in range(len(pairs)):
                    est = model.posterior_mean_one_pass(val[k][0])
                    score("conv_two_stage", n, rep, k, est, seconds)
            done = pd.DataFrame(rows)
            last = done[(done.n == n) & (done.replicate == rep)]
            print(
                f"  n = {n}, replicate {rep}: "
                + ", ".join(f"{m} {v:.2f}" for m, v in last.groupby("method").psnr.mean().items())
            )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="digits", choices=("digits", "patches"))
    parser.add_argument("--n", default="8,64,512")
    parser.add_argument("--replicates", type=int, default=3)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--m", type=int, default=600, help="conditions per task (conv)")
    parser.add_argument("--draws", type=int, default=8, help="pseudo-labels per condition")
    parser.add_argument("--target", default="stationary", choices=TARGETS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="CSV path (default: see the docstring)")
    parser.add_argument(
        "--agreement",
        default="",
        help="DRAWSxSTEPS,...: also score the oracle by the average of DRAWS reverse-SDE "
        "restorations of STEPS steps each (rows conv_oracle_DRAWSxSTEPS)",
    )
    args = parser.parse_args()
    methods = args.methods.split(",")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"--methods: unknown {unknown}; choose from {METHODS}")
    torch.set_num_threads(args.threads)
    table = run(
        args.dataset,
        [int(v) for v in args.n.split(",")],
        args.replicates,
        methods,
        m=args.m,
        draws=args.draws,
        target=args.target,
        agreement=tuple(
            tuple(int(v) for v in item.split("x")) for item in args.agreement.split(",") if item
        ),
    )
    out = args.out or RESULTS / "pilot" / f"restoration_defaults_{args.dataset}.csv"
    table.to_csv(out, index=False)
    summary = table.groupby(["method", "n"]).agg(psnr=("psnr", "mean"), ssim=("ssim", "mean"))
    print(summary.unstack("n").round(3).to_string())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
