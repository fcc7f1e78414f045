r"""Image-restoration tasks on real images that ship inside packages (nothing is downloaded).

Data:
- ``load_digits_images``: scikit-learn's handwritten digits, 1797 images of 8 x 8 pixels with
  16 gray levels, scaled to [0, 1]; every image is its own source.
- ``load_image_patches``: non-overlapping square patches (16 x 16 by default) cut from the
  grayscale versions of sample photographs shipped inside scikit-image, after downscaling;
  the photograph is the source.

Tasks are degradations D_k (paper: task k); the condition is the degraded image, the target
the clean one:  c = D_k(x) (flattened, shape (B, H W)),  x clean (B, H W). A generalist restorer
sees only c and must serve every degradation.

- ``Denoise(sigma)``:      c = x + sigma z.
- ``Inpaint(fraction)``:   c = M * x, a random mask per image hiding ``fraction`` of the pixels
  (hidden pixels read 0).
- ``Deblur(width, sigma)``: c = K x + sigma z, K a normalized Gaussian blur of standard deviation
  ``width`` pixels with reflecting borders (linear, preserves constant images).

``RestorationTasks`` splits the images by source into train (paired data, n per task),
unlabeled (conditions only, m per task; their clean images are kept for the oracle) and test,
fixed by ``split_seed``, and offers the same sampling calls as the Gaussian families.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from mol_diffusion._validation import check_generator, check_positive_float, check_positive_int

__all__ = [
    "Deblur",
    "Denoise",
    "Inpaint",
    "RestorationTasks",
    "load_digits_images",
    "load_image_patches",
]

DEFAULT_PHOTOS = (
    "camera",
    "coins",
    "moon",
    "page",
    "text",
    "astronaut",
    "coffee",
    "chelsea",
    "brick",
    "grass",
    "gravel",
    "rocket",
)


def _is_real(value) -> bool:
    """A real number (int or float, numpy scalars included), not a bool or a string."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_images(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(
            f"{name} must be a floating torch.Tensor of shape (B, H, W), got "
            f"{type(x).__name__} (use torch.as_tensor(..., dtype=torch.float64))"
        )
    if x.dim() != 3 or not x.is_floating_point():
        raise ValueError(
            f"{name} must be a floating tensor of shape (B, H, W), got shape "
            f"{tuple(x.shape)} and dtype {x.dtype}"
        )
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite")
    return x


def load_digits_images() -> tuple[torch.Tensor, np.ndarray]:
    """scikit-learn's digits as float64 images in [0, 1], shape (1797, 8, 8), and source ids."""
    from sklearn.datasets import load_digits

    images = torch.as_tensor(load_digits().images / 16.0, dtype=torch.float64)
    return images, np.arange(images.shape[0])


def load_image_patches(
    patch: int = 16, downscale: int = 2, photos: Sequence[str] = DEFAULT_PHOTOS
) -> tuple[torch.Tensor, np.ndarray]:
    """Non-overlapping ``patch`` x ``patch`` patches of scikit-image's sample photographs.

    Args:
        patch: patch side in pixels.
        downscale: integer factor of local-mean downscaling applied to each photograph first.
        photos: names of ``skimage.data`` functions (they read files shipped with the package).
    Returns:
        patches (N, patch, patch) float64 in [0, 1] and the index of each patch's photograph.
    """
    from skimage import color, data, transform, util

    check_positive_int(patch, "patch")
    check_positive_int(downscale, "downscale")
    out, sources = [], []
    for i, name in enumerate(photos):
        if not hasattr(data, name):
            raise ValueError(f"photos[{i}] = {name!r} is not an image of skimage.data")
        img = util.img_as_float64(getattr(data, name)())
        if img.ndim == 3:
            img = color.rgb2gray(img[..., :3])
        img = transform.downscale_local_mean(img, (downscale, downscale)) if downscale > 1 else img
        h, w = (img.shape[0] // patch) * patch, (img.shape[1] // patch) * patch
        tiles = (
            img[:h, :w]
            .reshape(h // patch, patch, w // patch, patch)
            .swapaxes(1, 2)
            .reshape(-1, patch, patch)
        )
        out.append(tiles)
        sources.append(np.full(len(tiles), i))
    patches = torch.as_tensor(np.clip(np.concatenate(out), 0.0, 1.0), dtype=torch.float64)
    return patches, np.concatenate(sources)


@dataclass(frozen=True)
class Denoise:
    """c = x + sigma z.

    Args:
        sigma: noise standard deviation, > 0.
    """

    sigma: float = 0.3

    def __post_init__(self) -> None:
        check_positive_float(self.sigma, "sigma")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = _check_images(x)
        z = torch.randn(x.shape, generator=check_generator(generator), dtype=torch.float64).to(
            x.dtype
        )
        return x + self.sigma * z


@dataclass(frozen=True)
class Inpaint:
    """c = M * x with a random pixel mask per image hiding ``fraction`` of the pixels.

    Args:
        fraction: share of hidden pixels, in (0, 1).
    """

    fraction: float = 0.5

    def __post_init__(self) -> None:
        if not _is_real(self.fraction) or not 0 < self.fraction < 1:
            raise ValueError(f"fraction must be a number in (0, 1), got {self.fraction!r}")

    def mask(self, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
        """1 where the pixel is observed, 0 where hidden; exactly round(fraction H W) hidden."""
        b, h, w = shape
        hidden = round(self.fraction * h * w)
        order = torch.rand(b, h * w, generator=check_generator(generator)).argsort(dim=1)
        keep = torch.ones(b, h * w, dtype=torch.float64)
        keep.scatter_(1, order[:, :hidden], 0.0)
        return keep.reshape(b, h, w)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = _check_images(x)
        return x * self.mask(x.shape, generator).to(x.dtype)


@dataclass(frozen=True)
class Deblur:
    """c = K x + sigma z, K a normalized Gaussian blur with reflecting borders.

    Args:
        width: standard deviation of the blur kernel in pixels, > 0.
        sigma: additive noise after blurring, >= 0.
    """

    width: float = 1.0
    sigma: float = 0.02
    _kernel: torch.Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_positive_float(self.width, "width")
        check_positive_float(self.sigma, "sigma", allow_zero=True)
        radius = max(1, math.ceil(3 * self.width))
        t = torch.arange(-radius, radius + 1, dtype=torch.float64)
        k = torch.exp(-0.5 * (t / self.width) ** 2)
        object.__setattr__(self, "_kernel", k / k.sum())

    def blur(self, x: torch.Tensor) -> torch.Tensor:
        """K x: separable Gaussian convolution with reflecting borders, shape of ``x``."""
        x = _check_images(x)
        r = (len(self._kernel) - 1) // 2
        if r >= min(x.shape[1:]):
            raise ValueError(f"blur radius {r} needs images larger than {tuple(x.shape[1:])}")
        k = self._kernel.to(x.dtype)
        out = torch.nn.functional.pad(x[:, None], (r, r, 0, 0), mode="reflect")
        out = torch.nn.functional.conv2d(out, k.reshape(1, 1, 1, -1))
        out = torch.nn.functional.pad(out, (0, 0, r, r), mode="reflect")
        return torch.nn.functional.conv2d(out, k.reshape(1, 1, -1, 1))[:, 0]

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        y = self.blur(x)
        z = torch.randn(y.shape, generator=check_generator(generator), dtype=torch.float64).to(
            y.dtype
        )
        return y + self.sigma * z


@dataclass(frozen=True, eq=False)
class RestorationTasks:
    """K degradations of one image set, split by source into train / unlabeled / test.

    Args:
        images: clean images (N, H, W) in [0, 1].
        sources: source id per image (N,); images of one source never straddle two splits.
        operators: the degradations, one per task.
        split_seed: fixes the split.
        fractions: shares of the *sources* in (train, unlabeled, test); sum to 1.
    """

    images: torch.Tensor
    sources: np.ndarray
    operators: tuple
    split_seed: int = 0
    fractions: tuple[float, float, float] = (0.4, 0.4, 0.2)
    splits: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_images(self.images, "images")
        low, high = float(self.images.min()), float(self.images.max())
        if low < 0 or high > 1:
            raise ValueError(
                f"images must lie in [0, 1] (PSNR uses data range 1), got values in "
                f"[{low:.3g}, {high:.3g}]; divide 8-bit images by 255"
            )
        if not isinstance(self.sources, np.ndarray):
            raise ValueError(
                f"sources must be a numpy array of shape ({self.images.shape[0]},), "
                f"got {type(self.sources).__name__}"
            )
        if not isinstance(self.operators, tuple) or not all(callable(op) for op in self.operators):
            raise ValueError(
                "operators must be a tuple of degradations (Denoise, Inpaint, Deblur or any "
                f"callable (x, generator) -> y), got {self.operators!r}"
            )
        if self.sources.shape != (self.images.shape[0],):
            raise ValueError(
                f"sources must have shape ({self.images.shape[0]},), got {self.sources.shape}"
            )
        if not self.operators:
            raise ValueError("operators must hold at least one degradation")
        if (
            len(self.fractions) != 3
            or min(self.fractions) <= 0
            or abs(sum(self.fractions) - 1) > 1e-9
        ):
            raise ValueError(
                f"fractions must be three positive shares summing to 1, got {self.fractions!r}"
            )
        unique = np.unique(self.sources)
        if len(unique) < 3:
            raise ValueError(f"need at least 3 sources to split by source, got {len(unique)}")
        order = np.random.default_rng(self.split_seed).permutation(unique)
        n_train = max(1, round(self.fractions[0] * len(unique)))
        n_unlabeled = max(1, round(self.fractions[1] * len(unique)))
        groups = {
            "train": order[:n_train],
            "unlabeled": order[n_train : n_train + n_unlabeled],
            "test": order[n_train + n_unlabeled :],
        }
        if len(groups["test"]) == 0:
            raise ValueError("the split leaves no test source; lower fractions[0] or fractions[1]")
        splits = {name: np.flatnonzero(np.isin(self.sources, ids)) for name, ids in groups.items()}
        object.__setattr__(self, "splits", splits)

    @property
    def num_tasks(self) -> int:
        return len(self.operators)

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.images.shape[1:])

    @property
    def dim(self) -> int:
        return self.images.shape[1] * self.images.shape[2]

    cond_dim = dim

    def _check_task(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < self.num_tasks:
            raise ValueError(f"k must be a task index in [0, {self.num_tasks}), got {k!r}")
        return k

    def _draw(self, split: str, count: int, name: str, generator: torch.Generator) -> torch.Tensor:
        check_positive_int(count, name)
        pool = self.splits[split]
        if count > len(pool):
            raise ValueError(
                f"{name} = {count} exceeds the {len(pool)} images of the {split} split"
            )
        pick = torch.randperm(len(pool), generator=check_generator(generator))[:count].numpy()
        return self.images[pool[pick]]

    def _pairs(self, k: int, clean: torch.Tensor, generator: torch.Generator):
        degraded = self.operators[self._check_task(k)](clean, generator)
        return degraded.reshape(len(clean), -1), clean.reshape(len(clean), -1)

    def sample(
        self, k: int, n: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """n training pairs of task k: (degraded c (n, H W), clean x (n, H W))."""
        self._check_task(k)
        return self._pairs(k, self._draw("train", n, "n", generator), generator)

    def sample_unlabeled(self, k: int, m: int, generator: torch.Generator):
        """m unlabeled pairs of task k; two-stage may use only the conditions (first element),
        the clean images are for the oracle baseline."""
        self._check_task(k)
        return self._pairs(k, self._draw("unlabeled", m, "m", generator), generator)

    def sample_conditions(self, k: int, m: int, generator: torch.Generator) -> torch.Tensor:
        """m degraded images of task k from the unlabeled split, (m, H W)."""
        return self.sample_unlabeled(k, m, generator)[0]

    def test_pairs(self, k: int, generator: torch.Generator):
        """Every test image degraded by task k: (c, x), each (N_test, H W)."""
        self._check_task(k)
        return self._pairs(k, self.images[self.splits["test"]], generator)
