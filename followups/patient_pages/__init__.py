"""The pages a patient opens from a booking or rebooking e-mail (DOMAIN.md section 12): plain HTML
forms, phone-sized, no script, served entirely by the project, in the patient's language."""
