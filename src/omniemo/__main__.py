"""`python -m omniemo ...` (and `accelerate launch -m omniemo train ...`)."""

from omniemo.cli import main

main()
