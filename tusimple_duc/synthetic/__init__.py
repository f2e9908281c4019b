"""Synthetic datasets in the exact file formats of the real releases (Cityscapes, KITTI road, VOC).

For tests, the demo and users without data: ``cityscapes.write_synthetic_cityscapes`` and
``kitti_road.write_synthetic_kitti_road`` and ``voc.write_synthetic_voc`` write the folders; the other
modules draw the street scenes (``camera`` geometry, ``street_layout`` and ``street_objects``,
``colours``, ``render``).
"""
