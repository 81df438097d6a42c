"""Treatment referral rules, suggestions, referral records and the service directory."""
