"""Layer 0: configuration — workspace settings, workflow files and the processing parameter models.

- :mod:`.settings`: ``fieldkit.toml`` < ``FIELDKIT_*`` environment < command-line flags;
- :mod:`.workflow`: workflow files (``workflows/*.yaml``): a selection and the processing steps;
- :mod:`.workflow_files`: the shipped workflow files and how a bare workflow name resolves;
- :mod:`.params`: the parameter models of the processing steps, one definition each.
"""
