import sys

from .cli import main

sys.exit(main(["proxy", *sys.argv[1:]]))
