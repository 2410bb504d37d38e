"""Reference-data generators for the shipped benchmarks (each: ``generate(out_dir, seed, size)``)."""
