"""Channel-width scaling shared by the model families (`width` option of build_model)."""

from landscape.errors import ConfigError

# Below 1/64 every layer of every model here has one channel (VGG's narrowest has 64), so a
# smaller width would be the same model under another name; above 8, VGG-A alone has 620 M
# parameters (2.5 GB in float32) and its construction, not training, would exhaust a CPU's memory
# long before the memory checks of landscape.sweep.limits see it. Documented in docs/errors.md.
MIN_WIDTH = 1 / 64
MAX_WIDTH = 8.0


def width_problem(width: float) -> str | None:
    """Why `width` is not a width the models take ("must be ..."), or None if it is."""
    if not width > 0:
        return f"must be positive, got {width}"
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        return (f"must be between 1/64 ({MIN_WIDTH:g}: one channel in every layer) and "
                f"{MAX_WIDTH:g}, got {width:g}")
    return None


def scaled(channels: int, width: float) -> int:
    """`channels` times `width`, rounded, at least 1 (tiny test models keep every layer)."""
    problem = width_problem(width)
    if problem is not None:  # every model's layer sizes pass here, before any is allocated
        raise ConfigError(f"width {problem}")
    return max(1, round(channels * width))
