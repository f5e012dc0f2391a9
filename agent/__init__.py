"""The headless DIANNE agent: hosts modules of deployed networks and passes tensors over ZeroMQ.

Imports ``engine`` and its own modules only; never ``app``, never Qt.
"""
