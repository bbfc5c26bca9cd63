"""The billing domain: money, tariffs, sessions, payments, refunds, postings. No I/O."""
