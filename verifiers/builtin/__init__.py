"""Built-in verifiers, registered through the same entry-point group as third-party plugins."""
