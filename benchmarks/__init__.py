"""Benchmarks, in three places:

- the headline benchmarks, here (`python -m benchmarks` lists them): each writes a Markdown table
  (and a PNG where useful) under benchmarks/results/;
- their shared harness, benchmarks/harness/ (the tests' server starting is tests/servers.py);
- the one-off studies, benchmarks/studies/, each with its write-up in benchmarks/studies/results/
  (benchmarks/studies/README.md says what each asked and found).
"""
