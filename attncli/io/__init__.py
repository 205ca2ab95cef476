"""Readers and writers: embeddings in (CSV, JSON, NPY, stdin, bundled samples), results out."""
