import sys

from caplab.cli import main

sys.exit(main())
