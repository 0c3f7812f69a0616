"""One-off studies: each asked one question of the demo (what limits a search, how MCTS should
spend its budget, where auto's saving ends, did a change move the figures) and its answer is a
write-up in benchmarks/studies/results/, listed in benchmarks/studies/README.md. They reuse
benchmarks/harness/ and are run again by hand (`python -m benchmarks.studies.NAME`); nothing
imports them, and their tests (benchmarks/studies/tests/) are outside the suite:
`python -m pytest benchmarks/studies` runs them."""
