"""cvcore: every computation of ConvNet Explorer, as a plain Python package.

It never imports Streamlit. Modules:

* :mod:`cvcore.errors`: the errors raised for bad input (all ``ValueError``).
* :mod:`cvcore.device`: GPU detection and memory growth.
* :mod:`cvcore.data`: data sets, bundled photographs, safe image loading.
* :mod:`cvcore.images`: pixel conversions.
* :mod:`cvcore.kernels`: hand-made filter presets and cell parsing.
* :mod:`cvcore.convolution`: conv2d, pooling and output shapes equal to Keras'.

Importing ``cvcore`` is cheap: TensorFlow loads only when a module needs it.
"""
__version__ = "0.1.0"
