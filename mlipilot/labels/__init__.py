"""Reference labels (energies and forces) from first-principles methods, cached and resumable."""
