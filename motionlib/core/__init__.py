"""Pure data: skeletons, the canonical motion, the error hierarchy. No I/O, no heavy imports."""
