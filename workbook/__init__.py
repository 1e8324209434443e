"""The workbook machinery: workspaces, the file-writing cell magic, checkpoints and checks.

Notebooks are the one hand-edited source of the application. Everything under
``checkpoints/`` and the application at the repository root is generated from them by
``make checkpoints`` (``python -m workbook record``). See ``docs/architecture.md``.
"""
