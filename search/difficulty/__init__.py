"""Difficulty estimators: plugins that put a request's difficulty in [0, 1] for the router."""
