"""Helpers of the plugin's models."""
import torch


def reduce_to_vector(out, pool: str = 'avg') -> torch.Tensor:
    """Reduce whatever a backbone returns to one vector per sample.

    Args:
        out (Tensor | tuple | list): ``(N, C, T, H, W)`` or ``(N, C, H, W)``
            maps, ``(N, L, C)`` tokens, ``(N, C)`` vectors, or a tuple of
            those (SlowFast's ``(slow, fast)``), reduced one by one and
            concatenated along the channels.
        pool (str): ``'avg'`` or ``'max'`` over the non-channel axes.

    Returns:
        Tensor: ``(N, C_total)``.
    """
    if isinstance(out, (tuple, list)):
        return torch.cat([reduce_to_vector(o, pool) for o in out], dim=1)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f'cannot reduce a {type(out).__name__} to a vector')
    if out.dim() == 2:
        return out
    if out.dim() == 3:
        # [N, L, C] tokens -> [N, C]
        dims = (1, )
    else:
        # [N, C, T, H, W] or [N, C, H, W] -> [N, C]
        dims = tuple(range(2, out.dim()))
    if pool == 'avg':
        return out.mean(dim=dims)
    if pool == 'max':
        return out.amax(dim=dims)
    raise ValueError(f'unknown teacher pool {pool!r}')
