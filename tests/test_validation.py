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


@pytest.mark.parametrize("make, setting, flag", [
    (lambda: TrainConfig(learning_rate=2), "learning_rate", "--lr"),
    (lambda: GrowConfig(calibrate_holdout=-1), "calibrate_holdout", "--calibrate-holdout"),
    (lambda: InspectConfig(folds=1), "folds", "--folds"),
])
def test_a_refused_setting_is_named_and_the_command_line_adds_its_flag(make, setting, flag):
    from textshift.cli.common import error_line

    with pytest.raises(ConfigError) as error:
        make()
    assert error.value.setting == setting and "--" not in str(error.value)  # the library knows no flags
    assert error_line(error.value) == f"{error.value} ({flag} on the command line)"


def test_a_setting_without_a_flag_gets_no_hint():
    from textshift.cli.common import error_line

    with pytest.raises(ConfigError) as error:
        TrainConfig(target_steps=0)
    assert error.value.setting == "target_steps" and error_line(error.value) == str(error.value)


def test_the_cli_prints_the_flag_of_a_refused_setting(run_cli, tmp_path):
    result = run_cli("train", "embedded:news", "-o", tmp_path / "model", "--lr", "2")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: the 'learning_rate' setting must be in (0, 1); got 2.0. Set it in "
                                     "(0, 1) (--lr on the command line)")
