"""``python -m imprint``: the command line (``imprint.deploy.cli``)."""

from imprint.deploy.cli import main

raise SystemExit(main())
