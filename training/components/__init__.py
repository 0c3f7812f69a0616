"""What the training recipes are built from (the torchtune shape: components here, short
runnable recipes in `training/`, their YAML configs in `training/configs/`).

Recipes import components and `training.tasks`, never each other; components never import a
recipe. `tests/unit/test_training_shape.py` reads the imports and fails otherwise.
"""
