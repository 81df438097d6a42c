"""Clients known by anonymous code: the record every programme shares."""
