"""mailscope.processors: the span-enrichment pipeline (see chain.py for its stages)."""
