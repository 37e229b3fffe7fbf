"""Dockable panes of the console (queue, locks, devices, history…).

Import panes from their modules (``from app.gui.panes.queue import QueuePane``);
this package imports nothing so that loading one pane never loads the others.
"""
