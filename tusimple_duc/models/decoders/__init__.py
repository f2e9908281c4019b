"""Decoders of the segmentation systems the paper compares with, on one interface.

A system is ``encoder -> decoder`` (:class:`~tusimple_duc.models.decoders.base.EncoderDecoderNet`):
the encoder returns a tuple of feature maps (:class:`~tusimple_duc.models.vgg.VGG16Backbone`,
:class:`~tusimple_duc.models.features.ResNetFeatures`, :class:`~tusimple_duc.models.decoders.unet.UNetEncoder`),
the decoder (a :class:`~tusimple_duc.models.decoders.base.SystemDecoder`) turns them into class
scores ``(N, L, H/s, W/s)``, ``s = prediction_stride`` (sizes per system in each module).

Modules: ``fcn`` (FCN-32s/16s/8s), ``segnet`` (unpooling with max-pooling indices),
``context`` (Dilation front-end classifier + context module), ``deeplab`` (v1 LargeFOV
classifier, v3 ASPP), ``refinenet``, ``pspnet`` (pyramid pooling + auxiliary head), ``unet``.
"""
