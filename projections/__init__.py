"""Read models built from the ledger: payment history, refund status, analytics."""
