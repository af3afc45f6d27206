"""Targets: one package per platform, each translating the plan into that platform's files."""
