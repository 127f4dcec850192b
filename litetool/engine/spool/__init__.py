"""The spool: committed transactions kept on local disk until every replica has them.

The record codec (``spool_codec``) and the spool's state (``spool_state``) are
pure values and bytes; ``spool`` holds the files.
"""
