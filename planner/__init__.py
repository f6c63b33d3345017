"""Taskwright: planner."""
