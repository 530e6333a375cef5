"""Figure builders: they draw what the library computed, and compute nothing themselves.

One module per family of figures (``tails``, ``mesa``); each function takes numbers and returns
a matplotlib ``Figure``.  Importing this package does not import pyplot.
"""
