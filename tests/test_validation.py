"""Input checks (textshift.validation): settings dataclasses refuse values of the wrong type at construction."""

from __future__ import annotations

import numpy as np
import pytest

from textshift.compare import CompareConfig
from textshift.errors import ConfigError
from textshift.grow import GrowConfig
from textshift.inspection import InspectConfig
from textshift.training import TrainConfig
from textshift.transfer import TransferConfig


@pytest.mark.parametrize("make, expect", [
    (lambda: TrainConfig(epochs=1.5), "'epochs' setting of TrainConfig must be an integer or None; got 1.5"),
    (lambda: TrainConfig(epochs="3"), "'epochs' setting of TrainConfig must be an integer or None; got '3'"),
    (lambda: TrainConfig(batch_size=True), "'batch_size' setting of TrainConfig must be an integer; got True"),
    (lambda: TrainConfig(seed=None), "'seed' setting of TrainConfig must be an integer; got None"),
    (lambda: TrainConfig(gradual_unfreeze="no"), "'gradual_unfreeze' setting of TrainConfig must be True or False"),
    (lambda: TrainConfig(max_length=None), "'max_length' setting of TrainConfig must be an integer"),
    (lambda: TransferConfig(train={"epochs": 1}), "'train' setting of TransferConfig must be a TrainConfig"),
    (lambda: TransferConfig(joint_target_weight="2"), "must be a number or None; got '2'"),
    (lambda: GrowConfig(memory_per_class=2.5), "'memory_per_class' setting of GrowConfig must be an integer"),
    (lambda: CompareConfig(sizes=[2.5]), "'sizes' setting of CompareConfig must be a list of integers"),
    (lambda: CompareConfig(strategies="finetune"), "'strategies' setting of CompareConfig must be a list of strings"),
    (lambda: CompareConfig(baselines=None), "'baselines' setting of CompareConfig must be a list of strings"),
    (lambda: CompareConfig(seeds=1.5), "'seeds' setting of CompareConfig must be an integer"),
    (lambda: CompareConfig(test_fraction=0), "test_fraction must be in (0, 1); got 0"),
    (lambda: InspectConfig(seed="a"), "'seed' setting of InspectConfig must be an integer"),
])
def test_wrong_types_are_refused(make, expect):
    with pytest.raises(ConfigError) as error:
        make()
    assert expect in str(error.value) and "\n" not in str(error.value)


def test_numpy_scalars_and_tuples_are_accepted():
    config = TrainConfig(epochs=np.int64(3), learning_rate=np.float32(1e-4), batch_size=np.int32(8))
    assert config.epochs == 3 and config.batch_size == 8
    assert CompareConfig(sizes=(100, np.int64(300)), seeds=np.int64(2)).sizes == [100, 300]
    assert TrainConfig(layer_lr_decay=1).layer_lr_decay == 1  # an int is a number
