import sys

from syndface.cli import main

sys.exit(main())
