"""cvcore: every computation of ConvNet Explorer, as a plain Python package.

It never imports Streamlit. Modules:

* :mod:`cvcore.errors`: the errors raised for bad input (all ``ValueError``).
* :mod:`cvcore.device`: GPU detection and memory growth.
* :mod:`cvcore.data`: data sets and bundled photographs (re-exports the image-folder API).
* :mod:`cvcore.imagefile`: untrusted image files, read safely into uint8 RGB.
* :mod:`cvcore.archives`: untrusted zip archives, extracted safely.
* :mod:`cvcore.folders`: image folders (one per class), scans, the validation split index.
* :mod:`cvcore.workspace`: private folders for one browser session's files.
* :mod:`cvcore.samples`: synthetic seedlings and data sets written as PNG folders, offline.
* :mod:`cvcore.augment`, :mod:`cvcore.imgaug_compat`: Keras-layer and imgaug augmentation.
* :mod:`cvcore.background`: leaf-green background removal with OpenCV.
* :mod:`cvcore.images`: pixel conversions.
* :mod:`cvcore.kernels`: hand-made filter presets and cell parsing.
* :mod:`cvcore.convolution`: conv2d, pooling and output shapes equal to Keras'.

Importing ``cvcore`` is cheap: TensorFlow loads only when a module needs it.
"""
__version__ = "0.1.0"
