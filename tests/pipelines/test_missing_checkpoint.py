"""A missing checkpoint is one line naming the file and where it comes from (the released files:
the original repository's link), not a hint about [network]."""
import os

import pytest

from tusimple_duc.config import load_test_config
from tusimple_duc.errors import CheckpointError
from tusimple_duc.pipelines.segment import run_test

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The link of the original repository's README (TuSimple/TuSimple-DUC, "Download the pretrained model").
ORIGINAL_README_LINK = "https://drive.google.com/open?id=0B72xLTlRb0SoREhISlhibFZTRmM"


@pytest.mark.parametrize("network", [False, True])
def test_missing_released_files_name_their_source(tmp_path, network):
    sets = [f"model.model_dir={tmp_path / 'models'}", "model.gpu=-1", f"model.result_dir={tmp_path / 'r'}"]
    config = load_test_config(os.path.join(ROOT, "configs", "test", "test_full_image.cfg"),
                              sets + (["network.preset=resnet101_duc_hdc_released"] if network else []))
    with pytest.raises(CheckpointError) as error:
        run_test(config, show_progress=False)
    models = tmp_path / "models"
    assert str(error.value) == (
        f"{models}/ResNet_DUC_HDC_CityScapes-0020.params: no such checkpoint (nor "
        f"ResNet_DUC_HDC_CityScapes-symbol.json); the released files ResNet_DUC_HDC_CityScapes-symbol.json, "
        f"ResNet_DUC_HDC_CityScapes-0020.params come from the original repository's link {ORIGINAL_README_LINK} "
        f"(docs/DATA.md): put them in {models}/")


def test_a_missing_checkpoint_of_ones_own_says_to_train_it(tmp_path):
    config = load_test_config(None, [f"model.model_dir={tmp_path}", "model.model_prefix=mine", "model.model_epoch=3",
                                     "model.gpu=-1", f"model.result_dir={tmp_path / 'r'}",
                                     "data.image_list=unused.lst"])
    with pytest.raises(CheckpointError, match=r"mine-0003.params: no such checkpoint \(nor mine-symbol.json\); "
                                              r"train it \(train.py\) or set \[model\] model_dir"):
        run_test(config, images=[str(tmp_path)], show_progress=False, out=str(tmp_path / "o"))
