"""The jobs of the sharding benchmark: one class per database, each on a queue of its own."""
