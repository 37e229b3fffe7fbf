"""Dialogs of the console (new task, bulk enqueue, settings, shell, screenshot…).

Import dialogs from their modules; this package imports nothing.
"""
