"""Symbolic physics for verifiers and search: quantities and dimensions (pint), formulas (sympy).

`notation` reads the demo physics format (a problem's given quantities, a step's equality chain,
the Answer line); `expressions` evaluates a formula over numbers, quantities or symbols without
eval(); `rules` is the formula library; `units` and `laws` are the two verifiers; `fusion`
computes a stated formula as a step of its own.
"""
