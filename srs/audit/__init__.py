"""The audit trail, read: who did or saw what at a site, filtered, paged and exported."""
