"""mlcompile: one declarative ML-system spec, compiled for every ML platform."""

__version__ = "0.1.0"
