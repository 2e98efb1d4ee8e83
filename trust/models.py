"""Trust Center: data retention policies, data requests and the public trust page of an account."""
