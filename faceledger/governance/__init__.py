"""The rules and the record: ledger, policy, calibration, keys, model card."""
