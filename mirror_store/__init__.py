"""Content-addressed artifact store: write-once blobs by sha256 plus a metadata index."""
