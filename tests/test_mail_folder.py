"""The embedded defaults' outbox keeps one file per connection, however fast mails go out."""

from django.core import mail

from clinic.mail_folder import EmailBackend


def test_mails_sent_one_after_the_other_in_the_same_second_land_in_files_of_their_own(tmp_path):
    # Each send opens and frees its own connection, as a reminder's delivery does; the freed
    # backend's memory is usually reused by the next one within the same second.
    for number in range(5):
        connection = EmailBackend(file_path=str(tmp_path))
        mail.EmailMessage(
            f"Reminder {number}", "Text", to=["a@patients.example"], connection=connection
        ).send()
        del connection

    files = sorted(tmp_path.iterdir())
    assert len(files) == 5
    subjects = sorted(
        line for path in files for line in path.read_text().splitlines() if line.startswith("Subject:")
    )
    assert subjects == [f"Subject: Reminder {number}" for number in range(5)]
