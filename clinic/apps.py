from django.apps import AppConfig


class ClinicConfig(AppConfig):
    name = "clinic"
    verbose_name = "Clinic"

    def ready(self):
        # Connect their receivers: admin logins in the audit trail (login_audit), a success clearing
        # that username's wrong passwords (login_lockout), and a signed-in session's clocks (idle
        # and maximum limits) started at the login itself (middleware).
        from clinic import login_audit, login_lockout, middleware  # noqa: F401
