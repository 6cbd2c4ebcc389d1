"""Domain-adaptive masked-language-model pretraining: the first stage of the ``adapt`` transfer strategy.

The classifier's encoder continues masked-language-model training on unlabelled target texts (ULMFiT,
"don't stop pretraining"), then :mod:`textshift.transfer` fine-tunes it like ``finetune``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from textshift.dropout import cheap_dropout
from textshift.errors import ConfigError, DataError, ModelError
from textshift.model import Classifier, encoder_module
from textshift.training import adamw, set_seed
from textshift.validation import check_types


@dataclass
class AdaptConfig:
    """Settings of domain-adaptive masked-language-model pretraining (the ``adapt`` strategy's first stage).

    Attributes
    ----------
    epochs : int
        Passes over the unlabelled texts.
    learning_rate : float
    batch_size : int
    mlm_probability : float
        Share of tokens masked.
    max_length : int
    seed : int
    """

    epochs: int = 3
    learning_rate: float = 5e-5
    batch_size: int = 32
    mlm_probability: float = 0.15
    max_length: int = 128
    seed: int = 42

    def __post_init__(self) -> None:
        check_types(self)
        if self.epochs < 1:
            raise ConfigError(f"the adapt 'epochs' setting must be >= 1; got {self.epochs}")
        if not 0 < self.mlm_probability < 1:
            raise ConfigError(f"the 'mlm_probability' setting must be in (0, 1); got {self.mlm_probability}")
        if not 0 < self.learning_rate < 1:
            raise ConfigError(f"the adapt 'learning_rate' setting must be in (0, 1); got {self.learning_rate}")

    def to_dict(self) -> dict:
        return asdict(self)


def adapt_language_model(classifier: Classifier, texts: list[str], *, config: AdaptConfig | None = None,
                         progress: bool = False, accelerator=None) -> dict:
    """Continue masked-language-model pretraining of the classifier's encoder on unlabelled ``texts``, in place.

    The encoder's weights are copied into a masked-LM model of the same architecture (its LM head starts from
    the checkpoint when present, else fresh, tied to the word embeddings), trained, and copied back. The
    classification head is untouched. Returns ``{"loss_first_epoch", "loss_last_epoch", "seconds"}``.
    """
    import tempfile

    from accelerate import Accelerator
    from tqdm.auto import tqdm
    from transformers import AutoModelForMaskedLM, DataCollatorForLanguageModeling

    from textshift.model import _quiet_transformers

    config = config or AdaptConfig()
    if not texts:
        raise DataError("no texts to adapt the language model on; expected unlabelled target texts")
    classifier.check_max_length(config.max_length)
    started = time.perf_counter()
    set_seed(config.seed)
    body = encoder_module(classifier.model)
    with tempfile.TemporaryDirectory() as folder, _quiet_transformers():
        classifier.model.save_pretrained(folder, safe_serialization=True)
        mlm = AutoModelForMaskedLM.from_pretrained(folder)
    mlm_body = encoder_module(mlm)
    encoded = classifier.tokenizer(list(texts), truncation=True, max_length=config.max_length,
                                   return_special_tokens_mask=True)
    items = [{"input_ids": ids, "special_tokens_mask": mask}
             for ids, mask in zip(encoded["input_ids"], encoded["special_tokens_mask"], strict=True)]
    collator = DataCollatorForLanguageModeling(classifier.tokenizer, mlm_probability=config.mlm_probability)
    generator = torch.Generator().manual_seed(config.seed)
    loader = torch.utils.data.DataLoader(items, batch_size=config.batch_size, shuffle=True, collate_fn=collator,
                                         generator=generator)
    accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    optimizer = adamw(mlm.parameters(), lr=config.learning_rate, weight_decay=0.01)
    from transformers import get_linear_schedule_with_warmup

    total = config.epochs * len(loader)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.06 * total), total)
    mlm, optimizer, loader, scheduler = accelerator.prepare(mlm, optimizer, loader, scheduler)
    losses = []
    bar = tqdm(total=len(loader) * config.epochs, desc="adapting LM", unit="step",
               disable=not progress or not accelerator.is_main_process, leave=False)
    with cheap_dropout(accelerator.unwrap_model(mlm)):
        for _ in range(config.epochs):
            mlm.train()
            running, steps = 0.0, 0
            for batch in loader:
                loss = mlm(**batch).loss
                accelerator.backward(loss)
                accelerator.clip_grad_norm_(mlm.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                running += loss.item()
                steps += 1
                bar.set_postfix(mlm_loss=f"{running / steps:.3f}", refresh=False)
                bar.update(1)
            losses.append(running / max(steps, 1))
    bar.close()
    mlm_body = encoder_module(accelerator.unwrap_model(mlm))
    missing, unexpected = body.load_state_dict(mlm_body.state_dict(), strict=False)
    if unexpected:
        raise ModelError(f"masked-LM encoder weights do not fit the classifier: {unexpected[:3]}")
    classifier.model.eval()
    return {"loss_first_epoch": round(losses[0], 4), "loss_last_epoch": round(losses[-1], 4),
            "seconds": round(time.perf_counter() - started, 2), "texts": len(texts)}
