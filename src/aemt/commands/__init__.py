"""Thin argparse front-ends, one module per stage; each exposes `register(subparsers)`."""
