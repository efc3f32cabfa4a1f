"""What every layer shares and that belongs to none of them: atomic file writes, where model
weights come from, which device runs a model. Imports nothing of indexer, generator or search."""
