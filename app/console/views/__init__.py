"""Console pages, one module per page family; importing a module registers its routes on the blueprint."""
