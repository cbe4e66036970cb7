"""The embedded defaults' outbox: e-mails written as files under ``VAR_DIR/mail``.

Django's file backend names a connection's file by the second and ``id()`` of the backend object.
Two sends in the same second whose backends happen to reuse one memory address (the usual case:
each send opens a connection, and the previous one was just freed) then append to one file, so
the folder showed one mail where two were sent. A random part in the name keeps them apart.
"""

import datetime
import os
import uuid

from django.core.mail.backends.filebased import EmailBackend as FileEmailBackend


class EmailBackend(FileEmailBackend):
    def _get_filename(self):
        if self._fname is None:
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            self._fname = os.path.join(self.file_path, f"{stamp}-{uuid.uuid4().hex}.log")
        return self._fname
