"""mailscope.instrumentation: BaseInstrumentor subclasses for email libraries."""
