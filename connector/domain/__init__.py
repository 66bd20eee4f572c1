"""Domain objects and rules; plain dataclasses, no I/O."""
