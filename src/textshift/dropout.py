"""Dropout with cheaper masks on CPU, used while textshift trains.

PyTorch's CPU dropout draws one 32-bit Mersenne-Twister number per element; on a small encoder that is a large
share of a training step, more than any operator but the matrix products (``bench/profile_train_step.py``;
BENCHMARKS.md §8). :func:`keep_mask` draws one 64-bit number per *four* elements and compares each 16-bit
quarter with a threshold: the same Bernoulli mask in distribution (drop probability rounded to a multiple of
1/65,536, off by at most 8e-6), from the same seeded generator, in less time.

:func:`cheap_dropout` applies it to a model for the length of a ``with`` block: every ``nn.Dropout`` becomes a
:class:`MaskDropout`, and a model that runs its attention through PyTorch's ``scaled_dot_product_attention``
(transformers' ``"sdpa"``) runs it through :func:`attention` instead, which draws the attention-probability mask
the same way (on CPU, SDPA falls back to its unfused path under dropout anyway). Both are restored on exit. On a
GPU nothing changes: CUDA's dropout and fused attention are already fast. What it saves on a CPU is measured by
``bench/speed.py`` (BENCHMARKS.md §8).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch
from torch import nn

logger = logging.getLogger(__name__)

ATTENTION = "textshift-sdpa"
_QUARTERS = 4  # 16-bit draws per 64-bit random number


def keep_mask(shape: tuple[int, ...] | torch.Size, p: float, *, device: torch.device | str = "cpu",
              generator: torch.Generator | None = None) -> torch.Tensor:
    """A boolean tensor of ``shape``, each element True (kept) with probability ``1 - p``, independently.

    Drawn from ``generator`` (default: torch's global generator, so ``torch.manual_seed`` makes it repeatable).
    ``p`` is rounded to a multiple of 1/65,536.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1]; got {p}")
    count = 1
    for size in shape:
        count *= size
    bits = torch.empty(-(-count // _QUARTERS), dtype=torch.int64, device=device)
    bits.random_(-2**63, None, generator=generator)  # the whole 64-bit range: four uniform 16-bit quarters
    threshold = round(p * 65536) - 32768  # an int16 quarter is uniform on [-32768, 32767]
    return bits.view(torch.int16)[:count].view(shape) >= threshold


def mask_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout of ``x`` (training mode) with a :func:`keep_mask`; p = 0 or 1 go to ``F.dropout``."""
    if p <= 0.0 or p >= 1.0:
        return nn.functional.dropout(x, p, training=True)
    return x * keep_mask(x.shape, p, device=x.device) * (1.0 / (1.0 - p))


class MaskDropout(nn.Dropout):
    """``nn.Dropout`` whose training-mode mask comes from :func:`keep_mask`; identity in eval mode."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return mask_dropout(x, self.p)


def attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
              is_causal: bool | None = None, **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' SDPA attention, except that in training on CPU the attention-probability dropout draws its
    mask with :func:`keep_mask`. Shapes as in transformers: ``query`` (batch, heads, queries, head_dim); returns
    (batch, queries, heads, head_dim). Anything this path does not cover (causal or grouped-query attention,
    position bias, soft-capping, sliding windows, GPUs, eval mode) goes to transformers' own SDPA function."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    special = any(kwargs.get(name) is not None for name in ("position_bias", "softcap", "sliding_window", "s_aux"))
    if (not module.training or dropout <= 0.0 or not query.is_cpu or causal or special
            or query.shape[1] != key.shape[1]):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query * scaling, key.transpose(-2, -1))
    if attention_mask is not None:
        attention_mask = attention_mask[:, :, :, :key.shape[-2]]
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask
    probs = mask_dropout(torch.softmax(scores, dim=-1), dropout)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None


def _register_attention() -> bool:
    try:
        from transformers import AttentionInterface
    except ImportError:  # transformers before the attention registry: dropout modules only
        return False
    AttentionInterface.register(ATTENTION, attention)  # idempotent: the same function under the same name
    return True


@contextlib.contextmanager
def cheap_dropout(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, ``model`` (on CPU) draws its dropout masks with :func:`keep_mask`; see the module doc.

    The model's ``nn.Dropout`` modules are replaced by :class:`MaskDropout` modules with the same ``p`` and its
    ``"sdpa"`` attention by :func:`attention`; on exit the original modules and attention setting come back.
    Parameters, state dict and outputs in eval mode are untouched. A model with parameters on a GPU is left alone.
    """
    parameter = next(model.parameters(), None)
    if parameter is None or not parameter.is_cpu:
        yield model
        return
    swapped: list[tuple[nn.Module, str, nn.Dropout]] = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                replacement = MaskDropout(child.p)
                replacement.train(child.training)
                setattr(parent, name, replacement)
                swapped.append((parent, name, child))
    config = getattr(model, "config", None)
    original = getattr(config, "_attn_implementation", None)
    # Only models built on transformers' attention registry can switch (others would log a warning and stay).
    switch = (original == "sdpa" and getattr(model, "_can_set_attn_implementation", lambda: False)()
              and _register_attention())
    if switch:
        try:
            model.set_attn_implementation(ATTENTION)
        except (ValueError, TypeError, AttributeError) as error:  # an architecture that refuses custom attention
            logger.debug("attention left as %s: %s", original, error)
        switch = config._attn_implementation == ATTENTION
    try:
        yield model
    finally:
        if switch:
            model.set_attn_implementation(original)
        for parent, name, child in swapped:
            child.train(getattr(parent, name).training)
            setattr(parent, name, child)
