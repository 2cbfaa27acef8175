"""Collections, ingest, image storage, the gallery repository, opt-outs, vector indexes."""
