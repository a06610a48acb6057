"""benchbox: what deploying an image classifier at FP32, FP16 or INT8 costs, measured the reference way."""

__version__ = "0.1.0"
