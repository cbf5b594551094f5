"""``python -m visualizer``: the same as the ``raft-visualizer`` command."""

from visualizer.cli import main

raise SystemExit(main())
