"""Where datasets come from: the public catalog, verified downloads, archives, the synthetic
generator, the layouts `prepare` reads, and the list of registered datasets."""
