"""Core: errors, table specs, the shared input checks and atomic versioned files. Imports nothing of sdm."""
