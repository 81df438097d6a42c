"""Overdose response: the console's record, from the first tap to the incident draft."""
