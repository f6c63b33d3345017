"""Taskwright: bot."""
