"""The read side over HTTP: `evledger serve`, API keys with roles, refund requests."""
