"""Serve a trained generator over HTTP with a web page. `python serve.py --help` lists flags."""
from src.config import parse_args
from src.serve.app import serve
from src.utils.errors import run_cli


def main(argv=None):
    serve(parse_args("serve", argv))
    return 0


if __name__ == "__main__":
    run_cli(main)
