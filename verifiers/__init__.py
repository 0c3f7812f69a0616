"""Verifiers: plugins that score reasoning steps in [0, 1], combined multiplicatively.

Imports flow one way: search -> verifiers -> the engine protocol. Nothing here imports the web app.
"""
