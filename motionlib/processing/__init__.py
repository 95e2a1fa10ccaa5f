"""Pure functions on motions and arrays (numpy only): filtering, tracking checks, quality."""
