from django.apps import AppConfig


class FollowupsConfig(AppConfig):
    name = "followups"
    verbose_name = "Follow-up"

    def ready(self):
        from followups import receivers  # noqa: F401  (connects the record's signals)
        from followups.calls import receivers as call_receivers  # noqa: F401  (the reminders' signals)
