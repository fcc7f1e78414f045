"""Command line: ``python -m mol_diffusion {run,claims,report,bench} ...``.

python -m mol_diffusion run [sample_complexity] [--quick] [--workers 2] [--force] [--reuse-stale]
                            [--results-dir D]
python -m mol_diffusion stale [--quick] [--results-dir D]
python -m mol_diffusion claims [--quick] [--write]
python -m mol_diffusion report
python -m mol_diffusion bench [--quick] [--json PATH]
python -m mol_diffusion profile NAME [--index I] [--quick] [--top 15]
python -m mol_diffusion calibrate [--simulations 1000] [--workers 2] [--claims a,b] [--out CSV]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mol_diffusion", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="run (or load cached) results of one experiment; without one, list them"
    )
    run.add_argument(
        "experiment", nargs="?", help="a config name in experiments/ or a path to a TOML file"
    )
    run.add_argument("--quick", action="store_true", help="use the config's [quick] overrides")
    run.add_argument(
        "--workers", type=_workers, default=None, help="processes, >= 1 (default: all cores)"
    )
    run.add_argument("--force", action="store_true", help="ignore cached results")
    run.add_argument(
        "--reuse-stale",
        action="store_true",
        help="load a table computed by other code (with a warning) instead of recomputing it",
    )
    run.add_argument(
        "--results-dir", default=None, help="where tables go (default: experiments/results)"
    )
    stale = sub.add_parser(
        "stale", help="names of the experiments whose stored table is stale or missing"
    )
    stale.add_argument("--quick", action="store_true", help="the quick-run tables")
    stale.add_argument("--results-dir", default=None, help="default: experiments/results")
    claims = sub.add_parser("claims", help="evaluate every registered claim on the saved results")
    claims.add_argument("--quick", action="store_true", help="use the quick-run tables")
    claims.add_argument("--write", action="store_true", help="write claims.json and claims.tex")
    sub.add_parser("report", help="write claims, paper/generated/*.tex and README's claims table")
    bench = sub.add_parser("bench", help="time batched vs one-at-a-time fits and the RF solver")
    bench.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    bench.add_argument(
        "--json", default="build/bench.json", help="where the measurements go (JSON)"
    )
    profile = sub.add_parser(
        "profile", help="where one cell's time goes: cProfile of one cell, as a worker runs it"
    )
    profile.add_argument("experiment", help="a config name in experiments/ or a TOML path")
    profile.add_argument(
        "--index", type=int, default=None, help="the cell, in canonical order (default: middle)"
    )
    profile.add_argument("--quick", action="store_true", help="use the config's [quick] overrides")
    profile.add_argument("--top", type=_workers, default=15, help="functions to print, >= 1")
    calibrate = sub.add_parser(
        "calibrate", help="size and power of the claim rules by simulation on pilot tables"
    )
    calibrate.add_argument(
        "--simulations", type=_workers, default=1000, help="simulations per scenario"
    )
    calibrate.add_argument("--seed", type=int, default=20261201, help="the calibration's seed")
    calibrate.add_argument(
        "--out", default=None, help="CSV to write (default: experiments/results/calibration.csv)"
    )
    calibrate.add_argument(
        "--claims",
        default=None,
        help="comma-separated claim ids: recalibrate only these and keep the other rows of --out",
    )
    calibrate.add_argument("--workers", type=_workers, default=1, help="processes, >= 1")
    args = parser.parse_args(argv)

    if args.command == "calibrate":
        from mol_diffusion import paths
        from mol_diffusion.calibration import calibration_table

        subset = None if args.claims is None else tuple(args.claims.split(","))
        out = paths.CALIBRATION_CSV if args.out is None else Path(args.out)
        table = calibration_table(
            simulations=args.simulations,
            seed=args.seed,
            claims_subset=subset,
            workers=args.workers,
            progress=True,
        )
        if subset is not None and out.is_file():
            from mol_diffusion.calibration.scenarios import merge_calibration

            table = merge_calibration(pd.read_csv(out), table)
        table.to_csv(out, index=False)
        with pd.option_context("display.width", 200, "display.max_colwidth", 50):
            print(table.drop(columns=["note"]).to_string(index=False))
        print(f"-> {out}")
        return 0

    if args.command == "bench":
        from mol_diffusion.bench import BenchConfig, run_bench, write_bench

        results = run_bench(BenchConfig.quick() if args.quick else BenchConfig())
        print(f"-> {write_bench(results, args.json)}")
        return 0

    if args.command == "profile":
        from mol_diffusion.profiling import profile_cell

        print(profile_cell(args.experiment, index=args.index, quick=args.quick, top=args.top))
        return 0

    if args.command == "report":
        from mol_diffusion.report import write_report

        verdicts = write_report()
        print(f"{len(verdicts)} claims; wrote claims.json, paper/generated/*.tex, README table")
        return 0

    if args.command == "stale":
        from mol_diffusion import paths
        from mol_diffusion.config import load_experiment
        from mol_diffusion.sweeps import table_status

        for path in sorted(paths.EXPERIMENTS.glob("*.toml")):
            config = load_experiment(path, quick=args.quick)
            if table_status(config, args.results_dir) != "current":
                print(path.stem)
        return 0

    if args.command == "run":
        from mol_diffusion import paths
        from mol_diffusion.config import load_experiment
        from mol_diffusion.sweeps import describe_source, load_or_run

        if args.experiment is None:
            from mol_diffusion.sweeps import table_status

            print(f"experiments ({paths.EXPERIMENTS}/*.toml): kind, cells, stored table")
            stale = 0
            for path in sorted(paths.EXPERIMENTS.glob("*.toml")):
                config = load_experiment(path, quick=args.quick)
                status = table_status(config, args.results_dir)
                stale += status.startswith("stale")
                cells = len(config.kind.cells(config))
                print(f"  {path.stem:<20} {config.kind.name:<12} {cells:>5}  {status}")
            if stale:
                print(
                    f"{stale} stale table(s): `run <experiment>` recomputes one "
                    "(make figures recomputes every one; REUSE_STALE=1 keeps them)"
                )
            return 0
        config = load_experiment(args.experiment, quick=args.quick)
        table = load_or_run(
            config,
            workers=args.workers,
            force=args.force,
            reuse_stale=args.reuse_stale,
            results_dir=args.results_dir,
        )
        print(describe_source(config, table, args.results_dir))
        return 0

    from mol_diffusion import claims as registry

    verdicts = registry.evaluate_all(quick=args.quick)
    with pd.option_context(
        "display.width", 200, "display.max_columns", 20, "display.max_colwidth", 60
    ):
        print(registry.verdict_frame(verdicts).to_string(index=False))
    if args.write:
        registry.write_outputs(verdicts)
    return 0


def cli(argv: list[str] | None = None) -> int:
    """``main``, with bad input reported in one line (exit status 2) instead of a traceback."""
    try:
        return main(argv)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(cli())
