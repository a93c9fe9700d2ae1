import sys

from mailscope.cli import main

sys.exit(main())
