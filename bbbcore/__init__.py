"""bbbcore: segment and measure Blood-Brain-Barrier endothelial cells.

Plain functions on numpy arrays and pandas DataFrames; no Streamlit, and
TensorFlow is imported only where a network is built, loaded or run.

>>> from bbbcore.io import load_image
>>> from bbbcore.unet import BoundaryModel
>>> from bbbcore.pipeline import segment_image
>>> result = segment_image(load_image("cells.tif"), BoundaryModel.load("models/bbb_unet.keras"))  # doctest: +SKIP
>>> result.cells.head()  # doctest: +SKIP
"""

__version__ = "0.1.0"
