"""The record: the writer, the manifest and its schema, statistics, the read side."""
