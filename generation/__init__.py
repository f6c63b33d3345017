"""Taskwright: generation."""
