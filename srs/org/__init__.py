"""The organisation: its sites, their first admins, and who else is organisation admin."""
