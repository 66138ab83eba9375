"""Cohort stage: importers for the supported tables and the validated manifest."""
