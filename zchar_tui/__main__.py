import sys

from zchar_tui.cli import main

sys.exit(main())
