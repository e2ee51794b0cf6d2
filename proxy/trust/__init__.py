"""Trust and visibility: what was served to whom, scan verdicts, admin approvals, decisions."""
