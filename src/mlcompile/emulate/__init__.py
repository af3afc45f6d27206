"""Run a built system on this machine the way its platform would: the compiled KFP IR
interpreted step by step, each container's command line run as a subprocess, cloud storage
mapped to folders under one emulation root (see docs/emulate.md)."""
