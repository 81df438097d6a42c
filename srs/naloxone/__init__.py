"""Naloxone stock by lot and expiry, its ledger, take-home kits and stock findings."""
