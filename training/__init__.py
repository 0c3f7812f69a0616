"""Offline training: demo tasks, base model, adapters, reward models, difficulty estimator.

Never imports `server`.
"""
