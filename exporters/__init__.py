"""mailscope.exporters: export wiring and readers of exported OTLP JSON files."""
