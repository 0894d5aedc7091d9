"""Views of an output: tables, catalogue, lineage."""
