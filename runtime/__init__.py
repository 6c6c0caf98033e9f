"""ibs-mprof runtime: everything that runs, built only on the generated accessors."""
