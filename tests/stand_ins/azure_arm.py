"""The ARM stand-in the Azure ML deploy tests use: the emulator's own
(mlcompile.emulate.services.azure_arm), re-exported here for the tests that import it by
file. Run it alone with `python -m mlcompile.emulate.services.azure_arm [PORT]`."""

from mlcompile.emulate.services.azure_arm import ArmStandIn, Call, bearer_token, serve, speak_tls, tls_certificate

__all__ = ["ArmStandIn", "Call", "bearer_token", "serve", "speak_tls", "tls_certificate"]
