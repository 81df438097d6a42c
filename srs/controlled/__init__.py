"""The controlled-drug register: an append-only ledger per drug and strength at a site."""
