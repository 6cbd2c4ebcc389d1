"""Cheaper CPU dropout: the mask's distribution, the modules it swaps in, the attention path, and restoring."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from textshift.dropout import ATTENTION, MaskDropout, attention, cheap_dropout, keep_mask, mask_dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_mask_keeps_each_element_with_probability_one_minus_p(p):
    mask = keep_mask((1000, 1000), p)
    assert mask.dtype == torch.bool and mask.shape == (1000, 1000)
    assert abs(mask.float().mean().item() - (1 - p)) < 0.003  # 1e6 draws: standard error < 0.0005
    # every quarter of the 64-bit draws is used alike (no lane is biased)
    lanes = mask.reshape(-1, 4).float().mean(0)
    assert (lanes - (1 - p)).abs().max().item() < 0.005
    # neighbours are independent: P(both kept) = (1 - p)^2
    both = (mask[:, :-1] & mask[:, 1:]).float().mean().item()
    assert abs(both - (1 - p) ** 2) < 0.004


def test_keep_mask_is_repeatable_under_a_seed_and_differs_between_draws():
    torch.manual_seed(3)
    first, second = keep_mask((7, 11, 13), 0.3), keep_mask((7, 11, 13), 0.3)
    torch.manual_seed(3)
    assert torch.equal(keep_mask((7, 11, 13), 0.3), first)
    assert not torch.equal(first, second)
    generator = torch.Generator().manual_seed(5)
    again = torch.Generator().manual_seed(5)
    assert torch.equal(keep_mask((5, 3), 0.5, generator=generator), keep_mask((5, 3), 0.5, generator=again))


def test_keep_mask_rejects_a_probability_outside_zero_to_one():
    with pytest.raises(ValueError, match=r"in \[0, 1\]; got 1.5"):
        keep_mask((3,), 1.5)


def test_mask_dropout_zeroes_or_rescales_and_passes_the_mask_to_the_gradient():
    x = torch.rand(64, 50) + 0.5  # no zeros of its own
    x.requires_grad_(True)
    out = mask_dropout(x, 0.2)
    kept = out != 0
    assert 0.7 < kept.float().mean().item() < 0.9
    torch.testing.assert_close(out[kept], x[kept] / 0.8)
    out.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.8)
    assert torch.equal(mask_dropout(x, 0.0), x)
    assert mask_dropout(x, 1.0).abs().sum().item() == 0


def test_mask_dropout_module_is_identity_in_eval_mode_and_keeps_p():
    module = MaskDropout(0.4)
    x = torch.randn(8, 8)
    assert module.p == 0.4 and isinstance(module, nn.Dropout)
    assert torch.equal(module.eval()(x), x)
    assert not torch.equal(module.train()(x), x)


def _bert(tiny_backbone, attn_implementation="sdpa"):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(tiny_backbone, num_labels=3,
                                                              attn_implementation=attn_implementation)


def test_attention_path_computes_what_sdpa_computes(tiny_backbone):
    """With a drop probability that rounds to zero, the CPU path's output is SDPA's (padding mask included)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    module = _bert(tiny_backbone).bert.encoder.layer[0].attention.self.train()
    query, key, value = (torch.randn(3, 2, 6, 16) for _ in range(3))
    padding = torch.ones(3, 1, 6, 6, dtype=torch.bool)
    padding[1, :, :, 4:] = False
    for mask in (None, padding, torch.where(padding, 0.0, torch.finfo(torch.float32).min)):
        ours, _ = attention(module, query, key, value, mask, dropout=1e-9)
        theirs, _ = sdpa_attention_forward(module.eval(), query, key, value, mask, dropout=0.0)
        module.train()
        assert ours.shape == (3, 6, 2, 16)
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    dropped, _ = attention(module, query, key, value, padding, dropout=0.5)
    assert not torch.allclose(dropped, theirs)


def test_cheap_dropout_swaps_every_dropout_and_the_attention_then_restores_them(tiny_backbone):
    model = _bert(tiny_backbone).train()
    before = [type(m) for m in model.modules()]
    count = sum(type(m) is nn.Dropout for m in model.modules())
    assert count >= 5  # embeddings, per layer (attention output, feed-forward output), head
    state = {k: v.clone() for k, v in model.state_dict().items()}
    ids = torch.randint(5, 100, (4, 9))
    with cheap_dropout(model) as same:
        assert same is model
        assert sum(type(m) is MaskDropout for m in model.modules()) == count
        assert not any(type(m) is nn.Dropout for m in model.modules())
        assert model.config._attn_implementation == ATTENTION
        model(input_ids=ids).logits.sum().backward()  # trains through the swapped path
        model.eval()
        with torch.no_grad():
            inside = model(input_ids=ids).logits
    assert [type(m) for m in model.modules()] == before
    assert model.config._attn_implementation == "sdpa"
    assert not model.training  # the mode set inside the block carries over to the restored modules
    assert all(not m.training for m in model.modules())
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, inside)  # eval outputs are untouched


def test_cheap_dropout_restores_the_model_when_the_block_raises(tiny_backbone):
    model = _bert(tiny_backbone)
    with pytest.raises(RuntimeError, match="stop"), cheap_dropout(model):
        raise RuntimeError("stop")
    assert not any(isinstance(m, MaskDropout) for m in model.modules())
    assert model.config._attn_implementation == "sdpa"


def test_cheap_dropout_leaves_eager_attention_alone(tiny_backbone):
    model = _bert(tiny_backbone, attn_implementation="eager")
    with cheap_dropout(model):
        assert model.config._attn_implementation == "eager"
        assert any(isinstance(m, MaskDropout) for m in model.modules())
    assert model.config._attn_implementation == "eager"


def test_seeded_training_is_repeatable_with_cheap_dropout(tiny_backbone):
    from textshift.model import Classifier
    from textshift.training import TrainConfig, train

    texts = ["tax cut for farms", "army base funds", "school lunch aid", "navy ship repair"] * 4
    labels = ["a", "b", "a", "b"] * 4
    runs = []
    for _ in range(2):
        classifier = Classifier.from_backbone(tiny_backbone, labels=["a", "b"], seed=0)
        train(classifier, texts, labels, config=TrainConfig(epochs=2, warmup_epochs=0, val_fraction=0, seed=1))
        runs.append(classifier.model.state_dict())
        assert not any(isinstance(m, MaskDropout) for m in classifier.model.modules())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
