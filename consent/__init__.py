"""Consent ledger, suppression list, contact gate, signed links, data-subject requests, audit log."""
