"""Score-model families behind one protocol (fit / score / sample / num_params)."""

from mol_diffusion.scores.base import InputScaler, ScoreModel, ScoreModelBase
from mol_diffusion.scores.conv import ConvGaussianScore, ConvGaussianScoreConfig
from mol_diffusion.scores.convnet import ConvScore, ConvScoreConfig
from mol_diffusion.scores.features import RandomFeatureScore, RandomFeatureScoreConfig
from mol_diffusion.scores.linear import LinearGaussianScore, LinearGaussianScoreConfig
from mol_diffusion.scores.mlp import MLPScore, MLPScoreConfig
from mol_diffusion.scores.prior import GaussianPriorScore, GaussianPriorScoreConfig

__all__ = [
    "ConvGaussianScore",
    "ConvGaussianScoreConfig",
    "ConvScore",
    "ConvScoreConfig",
    "GaussianPriorScore",
    "GaussianPriorScoreConfig",
    "InputScaler",
    "LinearGaussianScore",
    "LinearGaussianScoreConfig",
    "MLPScore",
    "MLPScoreConfig",
    "RandomFeatureScore",
    "RandomFeatureScoreConfig",
    "ScoreModel",
    "ScoreModelBase",
]
