"""kombu's filesystem transport with an atomic put: a message file appears in `queue/` only
once it is written whole.

kombu writes a message straight into its final file name, so a worker listing the folder in
that instant could take a file still empty and lose the message. Here it is written under a
name the worker never takes (`.partial-<uuid>`: no queue suffix), flushed to disk, then
renamed into place in one step (`os.replace`, same folder). Registered as the `flowbillfs`
transport (`EMBEDDED_BROKER_URL`).
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

ALIAS = "flowbillfs"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".partial-{uuid.uuid4()}")
        try:
            with open(partial, "wb") as fh:
                fh.write(str_to_bytes(dumps(payload)))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
    driver_type = driver_name = ALIAS


TRANSPORT_ALIASES.setdefault(ALIAS, f"{__name__}:Transport")
