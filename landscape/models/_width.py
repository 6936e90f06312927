"""Channel-width scaling shared by the model families (`width` option of build_model)."""


def scaled(channels: int, width: float) -> int:
    """`channels` times `width`, rounded, at least 1 (tiny test models keep every layer)."""
    return max(1, round(channels * width))
