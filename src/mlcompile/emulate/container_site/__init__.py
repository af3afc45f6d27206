"""Put on PYTHONPATH (the folder itself) for an emulated container of a user's image; see
`sitecustomize.py` here."""
