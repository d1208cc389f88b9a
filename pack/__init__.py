"""lambdapack: pack a TensorFlow/Keras image classifier into an AWS Lambda zip."""

__version__ = "0.1.0"
