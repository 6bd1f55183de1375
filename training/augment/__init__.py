"""Random variation of training snippets on the fly: acoustic colouring and tempo stretch."""
