"""The call list (DOMAIN.md section 9): reaching the patients who fall out of follow-up.

- ``services``: recording a contact attempt with the effect its outcome has;
- ``follow_up_end``: ending and resuming a patient's follow-up;
- ``selectors``: the call list and the lost-to-follow-up list, each in a fixed number of queries;
- ``api``, ``admin``: the ways integrators and staff reach them (the admin exports CSV);
- ``receivers``: the system's own attempt when a missed-visit e-mail is sent; ``demo``.
"""
