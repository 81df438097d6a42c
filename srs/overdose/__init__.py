"""Overdose response: the console's record, naloxone stock and take-home kits."""
