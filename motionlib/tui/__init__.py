"""`motionlib browse`: the terminal browser (Textual). It consumes the library facade only."""
