"""The DIANNE application: the ``dianne`` command line and (later) the Qt desktop app.

Core modules (``cli``, ``examples``, ...) are Qt-free; views live in sub-packages.
"""
