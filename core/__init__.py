"""What every app shares and nothing domain-specific: the guarded outbound HTTP client,
money-input parsing. Imports nothing from the apps (core <- accounts <- webhooks <- usage <-
billing)."""
