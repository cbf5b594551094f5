"""The builder of the documentation site: the pages generated from the code, and the tutorials' real output.

The site keeps one source of truth (CONTRIBUTING.md, rule 8): nothing on it
that the code already says is typed a second time. docs/hooks.py, the MkDocs
hook named in mkdocs.yml, calls this package at each step of a build. One
module per job:

========================  ==================================================================
``common``                paths, the build's logger, small Markdown helpers
``tags``                  the docstrings' ``Mirrors:``, ``Paper:``, ``Differs:`` ... lines
``code_index``            the ``raft`` package loaded with griffe, plus its comments and calls
``links``                 ``[text](code:run_follower)``: links to a line of a source page
``source_pages``          one page per module of ``raft/``, with line numbers
``markers``               ``<!-- @go-python-map -->`` and the other generated parts a page asks for
``go_map``                the Go ↔ Python map: every Go function, and the ``Mirrors:`` lines
``go_functions``          the list of hashicorp/raft's Go functions (docs/data/), and its regeneration
``paper_map``             the paper ↔ code map: Figures 2, 3 and 13, fields, sections cited
``code_tables``           the recorded differences, the event kinds, teaching bugs, scenarios
``docstrings``            a table, a literal block or the code of a definition, on a page
``commands``              a command's ``--help``, read from its argument parser
``tutorials``             runs the tutorials (with a cache) and cuts their output into steps
``benchmarks``            the benchmark results and the check that their plots are current
``visualizer``            the visualizer's presets, shortcuts, ``--help`` and screenshot
========================  ==================================================================

A hand-written page asks for a generated part with a marker such as
``<!-- @go-python-map -->``, links to code with ``[text](code:name)``, and
includes a tutorial's code and output with ``pymdownx.snippets``. Any problem
(an unknown name, a failing tutorial, a stale plot) is logged as a warning,
which fails ``mkdocs build --strict``.

Everything is plain MkDocs (1.6 or newer: ``File.generated``) and griffe,
which mkdocstrings already brings; no extra plugin.
"""
