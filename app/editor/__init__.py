"""The Build tab: a visual editor for DIANNE networks.

The model (``model``, ``undo``, ``props``, ``document``, ``clipboard``, ``autolayout``) is plain
Python and is tested without a display; the view (``canvas``, ``nodes``, ``palette``,
``properties``, ``build_tab``) is a thin PySide6/NodeGraphQt layer over it. NodeGraphQt is
imported only inside this package.
"""
