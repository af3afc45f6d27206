"""The HTTP plumbing of the local stand-ins lives with the emulator's platform services."""

from mlcompile.emulate.services.http import JsonService

__all__ = ["JsonService"]
