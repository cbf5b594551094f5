"""A readable Raft that mirrors hashicorp/raft, on asyncio."""

import logging

logging.getLogger("raft").addHandler(logging.NullHandler())
