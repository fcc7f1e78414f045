"""Experiment kinds: a kind defined here, outside the library, runs through the engine with
caching and 2 workers; the contract checker passes every shipped kind and fails broken ones."""

import tomllib
from dataclasses import dataclass

import pytest
import torch

from mol_diffusion import kinds, paths
from mol_diffusion.config import load_experiment
from mol_diffusion.kinds.base import apply_quick, check_keys, generator
from mol_diffusion.kinds.checks import KindContractError, check_kind
from mol_diffusion.sweeps import cell_cache_dir, load_or_run, results_path


# ---------------------------------------------------------------- a toy kind, in a few lines
@dataclass(frozen=True)
class ToyConfig:
    name: str
    seed: int
    scale: float  # the one config field
    quick: bool = False

    @property
    def kind(self):
        return TOY


@dataclass(frozen=True)
class ToyCell:
    replicate: int

    @property
    def label(self) -> str:
        return f"toy/rep{self.replicate}"


class ToyKind:
    name = "toy"
    timing_columns = ()
    integer_columns = ()
    config_class = ToyConfig

    def parse(self, raw, name, quick):
        raw = apply_quick(raw, quick)
        check_keys(raw, {"seed", "scale"}, {"seed", "scale"}, f"experiment {name!r}")
        return self.config_class(name, raw["seed"], float(raw["scale"]), quick)

    def cells(self, config):
        return [ToyCell(r) for r in range(3)]

    def batch_key(self, config, cell):
        return None

    def run_cells(self, config, cells):
        return [[self.row(config, cell)] for cell in cells]

    def row(self, config, cell):
        draw = torch.randn((), generator=generator(config, cell.replicate), dtype=torch.float64)
        return {"replicate": cell.replicate, "value": config.scale * float(draw)}

    def columns(self, config):
        return ("replicate", "value")

    def key_columns(self, config):
        return ("replicate",)

    def cell_key(self, config, cell):
        return {"replicate": cell.replicate}


TOY = ToyKind()


def test_a_kind_defined_outside_the_library_runs_through_the_engine(tmp_path, monkeypatch):
    monkeypatch.setitem(kinds.KINDS, "toy", TOY)  # what kinds.register_kind does, undone after
    path = tmp_path / "toy.toml"
    path.write_text('kind = "toy"\nseed = 7\nscale = 2.0\n[quick]\nscale = 0.5\n')
    config = load_experiment(path)
    assert config == ToyConfig("toy", 7, 2.0) and config.kind is TOY
    table = load_or_run(config, workers=2, progress=False, results_dir=tmp_path)
    assert list(table.replicate) == [0, 1, 2] and table.value.nunique() == 3
    assert results_path(config, tmp_path).is_file()
    assert not cell_cache_dir(config, tmp_path).exists()  # cells removed once the table is saved
    again = load_or_run(config, workers=1, progress=False, results_dir=tmp_path)
    assert again.equals(table)  # from the cache
    quick = load_experiment(path, quick=True)
    assert quick.scale == 0.5 and quick.quick
    report = check_kind(TOY, {"seed": 7, "scale": 2.0}, results_dir=tmp_path / "check")
    assert report.cells == 3 and report.rows == 3
    assert "seeds from the cell and the experiment seed" in report.passed


def test_register_kind_refuses_a_taken_name_and_a_non_kind(monkeypatch):
    monkeypatch.setattr(kinds, "KINDS", dict(kinds.KINDS))
    assert kinds.register_kind(TOY) is TOY and kinds.get_kind("toy") is TOY
    with pytest.raises(ValueError, match="already registered"):
        kinds.register_kind(ToyKind())
    with pytest.raises(TypeError, match="must implement ExperimentKind"):
        kinds.register_kind(object())
    with pytest.raises(ValueError, match="unknown experiment kind 'nope'"):
        kinds.get_kind("nope")


# ---------------------------------------------------------------- the checker can fail
class OrderDependentKind(ToyKind):
    """Draws from one process-wide stream: rows depend on which cells ran before."""

    stream = torch.Generator().manual_seed(0)

    def row(self, config, cell):
        return {"replicate": cell.replicate, "value": float(torch.rand((), generator=self.stream))}


class LaxKind(ToyKind):
    def parse(self, raw, name, quick):  # ignores unknown keys
        return self.config_class(name, raw["seed"], float(raw["scale"]), quick)


class MissingColumnKind(ToyKind):
    def columns(self, config):
        return ("replicate", "value", "risk")


class SeedBlindKind(ToyKind):
    def row(self, config, cell):
        return {"replicate": cell.replicate, "value": float(cell.replicate) ** 2}


class WrongKeyKind(ToyKind):
    def cell_key(self, config, cell):
        return {"replicate": 0}  # every cell claims replicate 0's rows


class UnpicklableCellKind(ToyKind):
    def cells(self, config):
        return [UnpicklableCell(r) for r in range(3)]


@dataclass(frozen=True)
class UnpicklableCell(ToyCell):
    def __reduce__(self):
        raise TypeError("this cell refuses to be pickled")


BROKEN = {}


def own_config(kind: ToyKind) -> ToyKind:
    """Give a broken kind configs whose ``kind`` is that kind, as a real kind's are."""

    @dataclass(frozen=True)
    class Config(ToyConfig):
        @property
        def kind(self):
            return BROKEN[type(kind).__name__]

    Config.__qualname__ = Config.__name__ = f"{type(kind).__name__}Config"
    globals()[Config.__name__] = Config  # picklable by reference, as a module-level class is
    kind.config_class = Config
    BROKEN[type(kind).__name__] = kind
    return kind


@pytest.mark.parametrize(
    ("broken", "match"),
    [
        (own_config(OrderDependentKind()), r"workers|reverse order"),
        (own_config(LaxKind()), "accepts an unknown key"),
        (own_config(MissingColumnKind()), "columns missing"),
        (own_config(SeedBlindKind()), "the seed is ignored"),
        (own_config(WrongKeyKind()), "cell's key says"),
        (own_config(UnpicklableCellKind()), "cannot be pickled"),
    ],
)
def test_the_checker_fails_a_kind_that_breaks_the_contract(broken, match, tmp_path):
    with pytest.raises((KindContractError, RuntimeError), match=match):
        check_kind(broken, {"seed": 7, "scale": 2.0}, results_dir=tmp_path)


# ---------------------------------------------------------------- every shipped kind passes
GAUSSIAN = """
seed = 4
replicates = 2
methods = ["two_stage", "labeled_only", "oracle"]
n = [8]
m = [32]
risk_draws = 256
[family]
num_tasks = 2
[specialist]
kind = "linear"
[generalist]
kind = "mlp"
capacities = [8]
depth = 1
steps = 10
batch_size = 16
[pseudo_labels]
steps = 10
"""

RESTORATION = """
seed = 3
replicates = 1
methods = ["two_stage", "labeled_only"]
n = [4]
m = [8]
[family]
posterior_samples = 1
sampler_steps = 3
test_images = 6
tasks = [{ kind = "denoise", sigma = 0.3 }, { kind = "inpaint", fraction = 0.5 }]
[specialist]
kind = "conv_gaussian"
image_shape = [8, 8]
kernel = 3
[generalist]
kind = "mlp"
capacities = [8]
depth = 1
steps = 5
batch_size = 8
[pseudo_labels]
steps = 3
"""

POLICY = """
seed = 5
replicates = 2
n = [2, 3]  # two cells per replicate task: their shared rollouts are checked
m = 4
rounds = 1
horizon = 12
horizons = [6, 12]
eval_episodes = 2
eval_seed = 1000000
action_noise = 0.2
[family]
envs = "point_nav"
[policy]
obs_horizon = 2
pred_horizon = 4
action_horizon = 2
inference_steps = 3
width = 16
depth = 1
batch_size = 32
steps = 10
[bc]
width = 16
depth = 1
steps = 10
"""


@pytest.mark.parametrize(
    ("name", "text"),
    [("gaussian", GAUSSIAN), ("restoration", RESTORATION), ("policy", POLICY)],
)
def test_every_shipped_kind_passes_the_contract(name, text, tmp_path):
    report = check_kind(kinds.get_kind(name), tomllib.loads(text), results_dir=tmp_path)
    assert report.kind == name and report.rows >= report.cells > 0


@dataclass(frozen=True)
class ListConfig(ToyConfig):
    tags: list = ()  # a list in a frozen dataclass: mutable, so no stable fingerprint

    @property
    def kind(self):
        return LIST_KIND


class ListKind(ToyKind):
    def parse(self, raw, name, quick):
        return ListConfig(name, raw["seed"], float(raw["scale"]), quick, ["a"])


LIST_KIND = ListKind()


def test_the_checker_fails_a_config_with_a_mutable_field(tmp_path):
    with pytest.raises(KindContractError, match="mutable value"):
        check_kind(LIST_KIND, {"seed": 7, "scale": 2.0}, results_dir=tmp_path)


def test_an_order_dependent_kind_fails_however_the_pool_places_its_tasks(tmp_path):
    """Run several times: the checker must not depend on which worker got which task."""
    for attempt in range(3):
        with pytest.raises(KindContractError, match=r"workers|reverse order"):
            check_kind(
                BROKEN["OrderDependentKind"],
                {"seed": 7, "scale": 2.0},
                results_dir=tmp_path / str(attempt),
            )


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(p.stem for p in paths.EXPERIMENTS.glob("*.toml")))
def test_every_shipped_config_passes_the_contract_at_its_quick_size(name, tmp_path):
    """check_kind on each shipped TOML with its [quick] overrides (make test-slow)."""
    raw = tomllib.loads((paths.EXPERIMENTS / f"{name}.toml").read_text())
    kind = kinds.get_kind(raw.pop("kind"))
    report = check_kind(kind, apply_quick(raw, True), results_dir=tmp_path, name=name)
    assert report.rows >= report.cells > 0
