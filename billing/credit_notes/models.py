"""Credit note models (imported at the end of billing/models.py so they belong to `billing`)."""
