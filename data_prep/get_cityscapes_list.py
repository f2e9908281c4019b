"""The original's ``data_prep/get_cityscapes_list.py``: the released 7-fold training list of Cityscapes.

``get_cityscapes_list_augmented(root, image_path, label_path, lst_path, is_fine=True,
sample_rate=1)`` writes what the original wrote: for every ``root/image_path/*/*.png``
(sorted) whose label exists (the path with ``image_path`` replaced by ``label_path`` and
``leftImg8bit`` by ``gtFine_labelIds`` or ``gtCoarse_labelIds``), numbered from 1, and of
those every ``sample_rate``-th, seven lines ``index<TAB>image<TAB>label<TAB>512<TAB>256*i``
(the package's 7-fold centres of the Cityscapes 1024x2048 frame). It prints the original's
progress and ``dismiss`` lines; the list is written atomically.
"""
import glob
import os

from tusimple_duc.data.lists import ListEntry, seven_fold_centres, write_list
from tusimple_duc.io.export import RELEASED_TEST_SHAPE


def get_cityscapes_list_augmented(root, image_path, label_path, lst_path, is_fine=True, sample_rate=1):
    """Write the 7-fold training list of ``root/image_path`` to ``lst_path`` (see the module docstring)."""
    label_suffix = "gtFine_labelIds" if is_fine else "gtCoarse_labelIds"
    images = sorted(glob.glob(os.path.join(root, image_path, "*/*.png")))
    centres = seven_fold_centres(*RELEASED_TEST_SHAPE)
    entries = []
    index = 0
    for image in images:
        label = image.replace(image_path, label_path).replace("leftImg8bit", label_suffix)
        if not os.path.isfile(label):
            print(f"dismiss {image}")
            continue
        index += 1
        if index % 100 == 0:
            print(f"{index} out of {len(images)} done.")
        if index % sample_rate == 0:
            entries += [ListEntry(index, image, label, centre) for centre in centres]
    write_list(lst_path, entries)
