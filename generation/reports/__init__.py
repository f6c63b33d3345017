"""Data summaries: load an uploaded table, profile it, chart it and word the computed facts."""

from generation.reports.loader import LoadedTable, TableError, load_table
from generation.reports.summarize import Summary, summarize_table

__all__ = ["LoadedTable", "Summary", "TableError", "load_table", "summarize_table"]
