"""Activity functions: where all I/O and computation of the workflows happen."""
