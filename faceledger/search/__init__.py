"""Accountable search: policy check, match, results, reviews, approvals, outcomes, bands."""
