"""lstmae: LSTM autoencoders for time series.

    from lstmae import LSTMAutoencoder, temporalize, load

Shapes, everywhere in the docs: (N, L, F) is N samples (windows or sequences) of L timesteps of
F features; a series is (T, F), T rows (time steps); Z is the code size, the length of one
encoding (the bottleneck), so bottleneck encodings are (N, Z).

Names are imported lazily so that `lstmae --help` starts without importing torch.
"""
__version__ = "0.1.0"

__all__ = ["LSTMAutoencoder", "temporalize", "load", "__version__"]


def __getattr__(name):
    if name == "LSTMAutoencoder":
        from .estimator import LSTMAutoencoder

        return LSTMAutoencoder
    if name == "temporalize":
        from .data.windowing import temporalize

        return temporalize
    if name == "load":
        from .estimator import load

        return load
    raise AttributeError(f"module 'lstmae' has no attribute {name!r}")
