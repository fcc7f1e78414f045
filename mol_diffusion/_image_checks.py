"""The check of an (H, W) image shape shared by the image models added for restoration
(``scores.prior``, ``scores.convnet``, ``restorers``). ``scores.conv`` keeps its own copy: it
is in every grid kind's code fingerprint, so moving it here would restale every table; it
moves when the restoration experiment is rewired (and every table recomputed anyway)."""

from __future__ import annotations

__all__ = ["check_image_shape"]


def check_image_shape(
    shape: object, name: str = "image_shape", *, minimum: int = 1, even: bool = False
) -> tuple[int, int]:
    """Return ``shape`` as a tuple (H, W) of ints >= ``minimum`` (even ones with ``even``);
    raise ``ValueError`` naming ``name`` otherwise (bools rejected)."""
    ok = (
        isinstance(shape, tuple | list)
        and len(shape) == 2
        and all(
            not isinstance(s, bool) and isinstance(s, int) and s >= minimum and not (even and s % 2)
            for s in shape
        )
    )
    if not ok:
        what = "positive integers" if minimum <= 1 else f"integers >= {minimum}"
        what = f"even {what}" if even else what
        raise ValueError(f"{name} must be two {what} (H, W), got {shape!r}")
    return tuple(shape)
