"""The reasoning extensions of chat and completions: routing, search, the `reasoning` object."""
