"""Overdose responses, interventions, incident reports and their review."""
