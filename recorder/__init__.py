"""The recorder process: writes the 1-minute history (see vzdivert.history) from the
worker's state stream."""
