"""Synthetic demo patients for `manage.py seed_demo`, `make run` and the benchmarks.

Nobody here is a real person: names are drawn at random from short lists of common names,
e-mail addresses use the reserved ``example.*`` domains, and phone numbers the block Ofcom keeps
for drama (+44 20 7946 0xxx). Shares follow DOMAIN.md: about 3 primary to 1 secondary, 2 women
to 1 man, onset in the 40s-50s, left side ~58 %, bilateral ~2 %, atypical ~5 %, AICA the most
common offender, toxin sessions about every 3 months, MVD complications at the reported rates.

Speed: the rows of a batch of patients are built in memory and written parents first, so that
children can name their parents' ids: with ``bulk_create`` (ids returned), or on PostgreSQL with
COPY into ids reserved from each table's sequence, which is several times faster. One transaction
per batch keeps memory bounded, and an interrupted run leaves only whole patients. Neither path
calls ``save()``, sends the domain signals of ``patients.signals`` or writes django-simple-history
rows: the seed has no change history, accepted for synthetic data, and its visits come from
``followups`` (see the extension point below). Because it also goes around the services, every
row is built to satisfy their rules, and tests/patients/test_seed_demo.py re-checks seeded records
with them.

Randomness comes from one generator per patient, seeded from the run's seed and the number in the
patient's MRN: DEMO00000042 of a seed is the same person whatever the batch size, the writer, or
whether the demo patients came in one run or several (ids, UUIDs and timestamps aside). A second
run continues the numbering, so it adds new people rather than copies. Dates count back from
``today``.

Extension point: after each batch is written, inside its transaction, ``demo_batch_seeded`` is
sent with ``batch=SeededBatch(...)``. ``followups`` connects a receiver to add visits and
assessments for the batch's treatments (``patients`` never imports ``followups``); it writes them
with ``batch.write``, the batch's own writer. A receiver answers a mapping of the row counts it
added (or ``None``); they join the summary. An exception in a receiver rolls its batch back.
"""

from __future__ import annotations

import random
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from itertools import accumulate

from django.db import connection, transaction
from django.db.models.functions import Length
from django.dispatch import Signal
from django.utils import timezone

from patients import codes
from patients.codes import (
    CompressionFound,
    DiagnosisStatus,
    Drug,
    HfsKind,
    HlaB1502Result,
    ImagingModality,
    ImagingSequence,
    ImagingStatus,
    Muscle,
    MvdComplicationKind,
    MvdTechnique,
    Presentation,
    SecondaryCause,
    Sex,
    Side,
    StopReason,
    ToxinProduct,
    TreatmentKind,
    TreatmentStatus,
    Vessel,
)
from patients.models import (
    BotulinumToxinDetail,
    Diagnosis,
    DiagnosisMuscle,
    ImagingSequenceRow,
    ImagingStudy,
    ImagingVesselRow,
    MedicationDetail,
    MvdComplication,
    MvdDetail,
    MvdVesselRow,
    Patient,
    ToxinInjection,
    Treatment,
)

DEFAULT_SEED = 1
# A few thousand patients per transaction: enough rows per INSERT to be fast, little memory.
BATCH_PATIENTS = 2000
ROWS_PER_INSERT = 5000
MRN_PREFIX = "DEMO"
MRN_DIGITS = 8

# Sent after each batch of demo patients is written, inside the batch's transaction.
# Arguments: batch (a SeededBatch). A receiver may answer {row label: count} of rows it added.
demo_batch_seeded = Signal()


@dataclass(frozen=True)
class SeededBatch:
    """One written batch: saved rows with their ids, for receivers of ``demo_batch_seeded``."""

    seed: int
    today: date
    patients: list[Patient]
    diagnoses: list[Diagnosis]
    treatments: list[Treatment]
    use_copy: bool = False

    def random_for(self, patient: Patient, purpose: str) -> random.Random:
        """A generator for what ``purpose`` adds to ``patient``, the same in every run of the seed."""
        return random.Random(f"{self.seed}:{patient.mrn}:{purpose}")

    def write(self, model, rows: list) -> None:
        """Save a receiver's ``rows`` the way the batch was written (COPY or bulk_create), ids set."""
        if self.use_copy:
            _copy_rows(model, rows, timezone.now())
        else:
            model.objects.bulk_create(rows, batch_size=ROWS_PER_INSERT)


@dataclass
class SeedSummary:
    patients: int
    rows: Counter = field(default_factory=Counter)
    seconds: float = 0.0


def seed_demo(
    *,
    patients: int,
    seed: int = DEFAULT_SEED,
    today: date | None = None,
    batch_size: int = BATCH_PATIENTS,
    use_copy: bool | None = None,
) -> SeedSummary:
    """Add ``patients`` synthetic patients with their diagnoses, imaging and treatments.

    ``use_copy`` writes with COPY instead of bulk_create; by default where the database has it
    (PostgreSQL). Both write the same rows.
    """
    started = time.perf_counter()
    if use_copy is None:
        use_copy = connection.vendor == "postgresql"
    today = today or timezone.localdate()
    summary = SeedSummary(patients=patients)
    first = demo_mrn_next_number()
    for batch_first in range(first, first + patients, batch_size):
        rows = _Rows()
        for number in range(batch_first, min(batch_first + batch_size, first + patients)):
            chart = _Chart(random.Random(f"{seed}:{number}"), today, rows)
            chart.write_history(f"{MRN_PREFIX}{number:0{MRN_DIGITS}d}")
        with transaction.atomic():
            summary.rows.update(rows.save(use_copy=use_copy))
            batch = SeededBatch(
                seed=seed,
                today=today,
                patients=rows.of(Patient),
                diagnoses=rows.of(Diagnosis),
                treatments=rows.of(Treatment),
                use_copy=use_copy,
            )
            for _receiver, added in demo_batch_seeded.send(sender=SeededBatch, batch=batch):
                summary.rows.update(added or {})
    summary.seconds = time.perf_counter() - started
    return summary


def demo_mrn_next_number() -> int:
    """The number after the highest demo MRN, so a second seed never collides with the first."""
    last = (
        Patient.objects.filter(mrn__regex=rf"^{MRN_PREFIX}[0-9]+$")
        .order_by(Length("mrn").desc(), "-mrn")
        .values_list("mrn", flat=True)
        .first()
    )
    return int(last.removeprefix(MRN_PREFIX)) + 1 if last else 1


# --- writing a batch ----------------------------------------------------------------------------

# Parents before children, so that bulk_create has given a parent its id when a child needs it.
ROW_LABELS = {
    Patient: "patients",
    Diagnosis: "diagnoses",
    DiagnosisMuscle: "diagnosis muscles",
    ImagingStudy: "imaging studies",
    ImagingSequenceRow: "imaging sequences",
    ImagingVesselRow: "imaging vessels",
    Treatment: "treatments",
    MedicationDetail: "medication courses",
    BotulinumToxinDetail: "botulinum toxin sessions",
    ToxinInjection: "toxin injections",
    MvdDetail: "MVDs",
    MvdVesselRow: "MVD vessels",
    MvdComplication: "MVD complications",
}


class _Rows:
    """The unsaved rows of one batch, by model; children hold their (unsaved) parent objects."""

    def __init__(self):
        self._by_model = {model: [] for model in ROW_LABELS}

    def add(self, row):
        self._by_model[type(row)].append(row)
        return row

    def of(self, model) -> list:
        return self._by_model[model]

    def save(self, *, use_copy: bool) -> Counter:
        now = timezone.now()
        for model, rows in self._by_model.items():
            if use_copy:
                _copy_rows(model, rows, now)
            else:
                model.objects.bulk_create(rows, batch_size=ROWS_PER_INSERT)
        return Counter({ROW_LABELS[model]: len(rows) for model, rows in self._by_model.items()})


def _copy_rows(model, rows: list, now: datetime) -> None:
    """Write ``rows`` with PostgreSQL's COPY, which takes rows several times faster than INSERT.

    COPY answers no ids, so they are reserved from the table's sequence first (in the order of the
    rows, as bulk_create would number them); each row then takes its parents' ids before it is
    written.
    """
    if not rows:
        return
    quote = connection.ops.quote_name
    table = model._meta.db_table
    fields = model._meta.concrete_fields
    links = [f for f in fields if f.is_relation]
    # created_at and updated_at: bulk_create stamps them in pre_save(), which COPY never calls.
    stamped = [
        f.attname for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s) ORDER BY 1",
            [table, model._meta.pk.column, len(rows)],
        )
        for row, (pk,) in zip(rows, cursor.fetchall(), strict=True):
            row.pk = pk
            # Saved, as bulk_create would leave it, for whoever uses the row after the batch.
            row._state.adding, row._state.db = False, connection.alias
        columns = ", ".join(quote(f.column) for f in fields)
        with cursor.cursor.copy(f"COPY {quote(table)} ({columns}) FROM STDIN") as copy:
            for row in rows:
                for link in links:
                    # Re-assigning the cached parent copies the id it has been given meanwhile.
                    parent = getattr(row, link.name)
                    if parent is not None:
                        setattr(row, link.name, parent)
                for attname in stamped:
                    setattr(row, attname, now)
                copy.write_row([getattr(row, f.attname) for f in fields])


# --- the clinic's figures -----------------------------------------------------------------------


class _Shares:
    """Codes with their relative weights, one drawn per call."""

    def __init__(self, weights: Mapping[str, float]):
        self._codes = list(weights)
        self._cumulative = list(accumulate(weights.values()))

    def pick(self, rng: random.Random) -> str:
        return rng.choices(self._codes, cum_weights=self._cumulative)[0]


SEX = _Shares({Sex.FEMALE: 64, Sex.MALE: 32, Sex.OTHER: 2, Sex.UNKNOWN: 2})
LANGUAGE = _Shares({"de": 45, "en": 35, "fr": 20})
HFS_KIND = _Shares({HfsKind.PRIMARY: 75, HfsKind.SECONDARY: 25})
# Post-paralytic HFS and tumours lead the secondary causes (Colosimo et al. 2006).
SECONDARY_CAUSE = _Shares(
    {
        SecondaryCause.POST_PARALYTIC: 38,
        SecondaryCause.CPA_TUMOR: 15,
        SecondaryCause.OTHER_TUMOR: 5,
        SecondaryCause.VASCULAR_MALFORMATION: 8,
        SecondaryCause.VERTEBROBASILAR_DOLICHOECTASIA: 12,
        SecondaryCause.DEMYELINATING: 8,
        SecondaryCause.BRAINSTEM_LESION: 5,
        SecondaryCause.BONY_ABNORMALITY: 3,
        SecondaryCause.OTHER: 6,
    }
)
SIDE = _Shares({Side.LEFT: 58, Side.RIGHT: 40, Side.BILATERAL: 2})
ATYPICAL_SHARE = 0.05
# Causes that show on imaging as a lesion of their own, as a report names them.
LESION_IN_REPORTS = {
    SecondaryCause.CPA_TUMOR: "a cerebellopontine-angle tumour",
    SecondaryCause.OTHER_TUMOR: "a tumour along the facial nerve",
    SecondaryCause.VASCULAR_MALFORMATION: "a vascular malformation",
    SecondaryCause.VERTEBROBASILAR_DOLICHOECTASIA: "vertebrobasilar dolichoectasia",
    SecondaryCause.DEMYELINATING: "demyelinating disease",
    SecondaryCause.BRAINSTEM_LESION: "a brainstem lesion",
    SecondaryCause.BONY_ABNORMALITY: "a bony abnormality of the skull base",
}
# Secondary causes that put a vessel against the nerve, so that a decompression can help.
VASCULAR_CAUSES = frozenset(
    {SecondaryCause.VASCULAR_MALFORMATION, SecondaryCause.VERTEBROBASILAR_DOLICHOECTASIA}
)

# How often the spasm has spread to each muscle beyond the one it started in.
SPREAD = {
    Muscle.FRONTALIS: 0.3,
    Muscle.CORRUGATOR: 0.35,
    Muscle.ZYGOMATICUS: 0.6,
    Muscle.LEVATOR_LABII: 0.4,
    Muscle.ORBICULARIS_ORIS: 0.5,
    Muscle.BUCCINATOR: 0.2,
    Muscle.MENTALIS: 0.3,
    Muscle.PLATYSMA: 0.25,
}
# Where an atypical spasm starts.
LOWER_FACE = (Muscle.ORBICULARIS_ORIS, Muscle.BUCCINATOR, Muscle.MENTALIS, Muscle.ZYGOMATICUS)

# AICA leads (~38-45 % of offenders), then PICA and the vertebral artery, often together.
OFFENDER = _Shares(
    {Vessel.AICA: 42, Vessel.PICA: 27, Vessel.VERTEBRAL: 16, Vessel.VEIN: 7, Vessel.SCA: 5, Vessel.BASILAR: 3}
)
VESSEL_IN_REPORTS = {
    Vessel.AICA: "AICA",
    Vessel.PICA: "PICA",
    Vessel.VERTEBRAL: "the vertebral artery",
    Vessel.BASILAR: "the basilar artery",
    Vessel.SCA: "SCA",
    Vessel.VEIN: "a vein",
}
MODALITY = _Shares(
    {ImagingModality.MRI: 85, ImagingModality.MRA: 5, ImagingModality.CT: 6, ImagingModality.ANGIOGRAPHY: 4}
)
MAGNETIC = (ImagingModality.MRI, ImagingModality.MRA)
# The sequence that shows the root exit zone; "" is an MRI done without one (imaging_missing).
HIGH_RESOLUTION = _Shares(
    {ImagingSequence.CISS: 50, ImagingSequence.FIESTA: 35, ImagingSequence.T2_3D_OTHER: 7, "": 8}
)

DRUG = _Shares(
    {
        Drug.CARBAMAZEPINE: 35,
        Drug.CLONAZEPAM: 18,
        Drug.GABAPENTIN: 20,
        Drug.OXCARBAZEPINE: 12,
        Drug.BACLOFEN: 10,
        Drug.OTHER: 5,
    }
)


def _mg(*doses) -> tuple[Decimal, ...]:
    return tuple(Decimal(str(dose)) for dose in doses)


# Daily doses as prescribed, repeated where common; every one within its DOMAIN.md ceiling.
DAILY_DOSES_MG = {
    Drug.CARBAMAZEPINE: _mg(200, 300, 400, 400, 600, 600, 800, 1000, 1200),
    Drug.OXCARBAZEPINE: _mg(300, 600, 600, 900, 1200, 1200, 1800, 2400),
    Drug.CLONAZEPAM: _mg(0.5, 1, 1, 1.5, 2, 3, 4, 6),
    Drug.GABAPENTIN: _mg(300, 600, 900, 900, 1200, 1800, 2400, 3600),
    Drug.BACLOFEN: _mg(15, 30, 30, 45, 60, 80),
    Drug.OTHER: _mg(25, 50, 100, 150, 300),
}
STOP_REASON = _Shares(
    {StopReason.INEFFECTIVE: 45, StopReason.ADVERSE_EFFECT: 30, StopReason.SWITCHED: 15, StopReason.OTHER: 10}
)
REASONS_TO_TRY_ANOTHER_DRUG = (StopReason.INEFFECTIVE, StopReason.ADVERSE_EFFECT, StopReason.SWITCHED)

TOXIN_PRODUCT = _Shares(
    {
        ToxinProduct.ONABOTULINUMTOXINA: 60,
        ToxinProduct.ABOBOTULINUMTOXINA: 20,
        ToxinProduct.INCOBOTULINUMTOXINA: 18,
        ToxinProduct.OTHER: 2,
    }
)
# incobotulinumtoxinA and the others are dosed about like onabotulinumtoxinA.
ONABOTULINUM_LIKE_UNITS = (_mg(10, 12.5, 15, 17.5, 20, 25), _mg(2.5, 5, 5, 7.5, 10))
# (around the eye, elsewhere) per product: abobotulinumtoxinA units are about 3 of the others'.
UNITS_PER_MUSCLE = {
    ToxinProduct.ONABOTULINUMTOXINA: ONABOTULINUM_LIKE_UNITS,
    ToxinProduct.ABOBOTULINUMTOXINA: (_mg(30, 40, 50, 60, 80), _mg(10, 15, 15, 20, 30)),
    ToxinProduct.INCOBOTULINUMTOXINA: ONABOTULINUM_LIKE_UNITS,
    ToxinProduct.OTHER: ONABOTULINUM_LIKE_UNITS,
}
SESSION_UNITS_LIMIT = Decimal(codes.TOXIN_UNITS_LIMIT)

# (kind, rate per MVD, onset in days after surgery, lasts how many days or None if it stays).
# DOMAIN.md: transient palsy 9.5 %, delayed palsy 6.5-14.5 % (onset around day 10), permanent
# hearing loss 2.3 %, CSF leak 1.4 %; the rarer ones from the same series.
MVD_COMPLICATIONS = (
    (MvdComplicationKind.TRANSIENT_FACIAL_PALSY, 0.095, (0, 2), (14, 90)),
    (MvdComplicationKind.DELAYED_FACIAL_PALSY, 0.10, (5, 16), (30, 180)),
    (MvdComplicationKind.PERMANENT_FACIAL_PALSY, 0.005, (0, 1), None),
    (MvdComplicationKind.HEARING_LOSS_TRANSIENT, 0.03, (0, 3), (7, 60)),
    (MvdComplicationKind.HEARING_LOSS_PERMANENT, 0.023, (0, 3), None),
    (MvdComplicationKind.CSF_LEAK, 0.014, (2, 14), (3, 21)),
    (MvdComplicationKind.MENINGITIS, 0.005, (3, 10), (10, 21)),
    (MvdComplicationKind.STROKE, 0.002, (0, 2), None),
    (MvdComplicationKind.OTHER, 0.01, (0, 30), (7, 60)),
)
OTHER_TREATMENTS = ("Acupuncture", "Biofeedback", "Facial physiotherapy", "Relaxation training")

# --- who the demo patients are ------------------------------------------------------------------

# Female given names, male given names and family names by preferred language.
_NAME_WORDS = {
    "en": (
        "Olivia Emma Amelia Grace Chloe Hannah Margaret Helen Susan Karen Linda Patricia Sarah Rachel "
        "Claire Joanne Alison Fiona Ruth Jane",
        "James Oliver Thomas William Henry George David Michael Richard Peter Andrew Mark Paul Stephen "
        "Robert Daniel Simon Ian Graham Neil",
        "Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans Walker "
        "White Roberts Green Hall Wood Jackson Clarke Hughes Edwards Turner Hill O'Brien Murphy",
    ),
    "de": (
        "Anna Maria Ursula Monika Petra Sabine Andrea Claudia Susanne Birgit Katrin Stefanie Julia Jutta "
        "Renate Gisela Heike Martina Brigitte Karin",
        "Thomas Michael Andreas Stefan Frank Jürgen Klaus Uwe Wolfgang Bernd Matthias Markus Jörg Dieter "
        "Ralf Holger Sven Tobias Lukas Günter",
        "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch Bauer "
        "Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange",
    ),
    "fr": (
        "Marie Nathalie Isabelle Sylvie Catherine Françoise Valérie Sandrine Christine Véronique Hélène "
        "Céline Camille Léa Chantal Monique Élodie",
        "Jean Pierre Michel Philippe Alain Nicolas Patrick Christophe François Laurent Éric Stéphane "
        "Olivier Frédéric Thierry Julien Bernard Luc",
        "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefèvre "
        "Michel Garcia Bertrand Roux Vincent Fournier Morel Girard André Mercier Dupont",
    ),
}
NAMES = {language: tuple(words.split() for words in lists) for language, lists in _NAME_WORDS.items()}
# Reserved for documentation (RFC 2606), so no demo e-mail ever reaches anyone.
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
# Most patients live in the clinic's zone (blank); a few receive reminders elsewhere.
TIME_ZONES = ("Europe/London", "Europe/Paris", "Europe/Zurich", "Europe/Vienna", "America/New_York")
HLA_RESULT_AT_RISK = _Shares(
    {HlaB1502Result.NEGATIVE: 55, HlaB1502Result.POSITIVE: 5, HlaB1502Result.NOT_TESTED: 40}
)
YEAR = 365.25


def _email_address(rng: random.Random, given_name: str, family_name: str) -> str:
    local = f"{_ascii_letters(given_name)}.{_ascii_letters(family_name)}"
    if rng.random() < 0.5:
        local += str(rng.randint(1, 99))
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def _ascii_letters(name: str) -> str:
    # E-mail validation takes ASCII local parts only: Jörg -> jorg, O'Brien -> obrien.
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


# --- one patient's history ----------------------------------------------------------------------


class _Chart:
    """One synthetic patient's record, written in the order it happened: who, what, imaging, care.

    Every date lies between the date of birth and ``today``; end dates are not before start dates;
    toxin sessions are at least 70 days apart, so no 30-day window holds more than one session,
    and each session stays within the 200-unit limit on its own.
    """

    def __init__(self, rng: random.Random, today: date, rows: _Rows):
        self.rng = rng
        self.today = today
        self.rows = rows

    def write_history(self, mrn: str) -> None:
        born, onset, diagnosed_on = self._timeline()
        self.patient = self._patient(mrn, born, diagnosed_on)
        self.diagnosis = self._diagnosis(onset, diagnosed_on)
        self.offenders = self._offending_vessels()
        imaged = self._imaging_studies(onset)
        self._settle_diagnosis_status(imaged)
        self._treatments()
        self._archive_some()

    # --- small tools ---

    def _days(self, low: int, high: int) -> timedelta:
        return timedelta(days=self.rng.randint(low, high))

    def _years(self, mean: float, longest: float) -> timedelta:
        return timedelta(days=round(min(self.rng.expovariate(1 / mean), longest) * YEAR))

    def _office_hours(self, day: date) -> datetime:
        moment = clock(self.rng.randint(8, 17), self.rng.randint(0, 59))
        return datetime.combine(day, moment, tzinfo=timezone.get_default_timezone())

    def _treatment(self, kind: str, started_on: date, status: str, ended_on=None, notes="") -> Treatment:
        return self.rows.add(
            Treatment(
                patient=self.patient,
                diagnosis=self.diagnosis,
                kind=kind,
                status=status,
                started_on=started_on,
                ended_on=ended_on,
                notes=notes,
            )
        )

    # --- the person ---

    def _timeline(self) -> tuple[date, date, date]:
        # The clinic has grown, so recent diagnoses are commoner than old ones.
        diagnosed_on = self.today - self._years(mean=4, longest=12)
        onset = diagnosed_on - self._years(mean=1.5, longest=8)
        age_at_onset = min(max(self.rng.gauss(50, 9), 20), 80)
        born = onset - timedelta(days=round(age_at_onset * YEAR))
        return born, onset, diagnosed_on

    def _patient(self, mrn: str, born: date, diagnosed_on: date) -> Patient:
        rng = self.rng
        sex = SEX.pick(rng)
        language = LANGUAGE.pick(rng)
        female_names, male_names, family_names = NAMES[language]
        feminine = sex == Sex.FEMALE or (sex != Sex.MALE and rng.random() < 0.5)
        given_name = rng.choice(female_names if feminine else male_names)
        family_name = rng.choice(family_names)
        email = _email_address(rng, given_name, family_name) if rng.random() < 0.75 else ""
        consents = bool(email) and rng.random() < 0.65
        # Yesterday at the latest, so that a consent is never stamped later than now.
        consent_day = min(diagnosed_on + self._days(0, 60), self.today - timedelta(days=1))
        at_risk = rng.random() < 0.08
        return self.rows.add(
            Patient(
                mrn=mrn,
                given_name=given_name,
                family_name=family_name,
                date_of_birth=born,
                sex=sex,
                email=email,
                phone=f"+44 20 7946 0{rng.randint(0, 999):03d}" if rng.random() < 0.8 else "",
                preferred_language=language,
                timezone=rng.choice(TIME_ZONES) if rng.random() < 0.1 else "",
                email_reminders=consents,
                email_reminders_consented_at=self._office_hours(consent_day) if consents else None,
                at_risk_hla_b1502=at_risk,
                hla_b1502_result=(
                    HLA_RESULT_AT_RISK.pick(rng)
                    if at_risk
                    else (HlaB1502Result.NEGATIVE if rng.random() < 0.03 else HlaB1502Result.NOT_TESTED)
                ),
            )
        )

    def _archive_some(self) -> None:
        # A few patients followed for over a year leave the clinic (moved away, died); their
        # record stays, archived.
        followed_days = (self.today - self.diagnosis.diagnosed_on).days
        if self.rng.random() < 0.01 and followed_days > 365:
            self.patient.archived = True
            self.patient.archived_at = self._office_hours(self.today - self._days(1, 365))

    # --- the diagnosis ---

    def _diagnosis(self, onset: date, diagnosed_on: date) -> Diagnosis:
        rng = self.rng
        kind = HFS_KIND.pick(rng)
        atypical = rng.random() < ATYPICAL_SHARE
        diagnosis = self.rows.add(
            Diagnosis(
                patient=self.patient,
                kind=kind,
                secondary_cause=SECONDARY_CAUSE.pick(rng) if kind == HfsKind.SECONDARY else "",
                side=SIDE.pick(rng),
                presentation=Presentation.ATYPICAL if atypical else Presentation.TYPICAL,
                # Some patients cannot date their first twitch.
                onset_date=onset if rng.random() < 0.9 else None,
                diagnosed_on=diagnosed_on,
            )
        )
        self.muscles = self._involved_muscles(atypical)
        for muscle in self.muscles:
            self.rows.add(DiagnosisMuscle(diagnosis=diagnosis, muscle=muscle))
        return diagnosis

    def _involved_muscles(self, atypical: bool) -> list[str]:
        # Typical HFS starts around the eye and spreads down; atypical starts low and spreads up.
        first = self.rng.choice(LOWER_FACE) if atypical else Muscle.ORBICULARIS_OCULI
        spread = [muscle for muscle, share in SPREAD.items() if muscle != first and self.rng.random() < share]
        if atypical and self.rng.random() < 0.7:
            spread.append(Muscle.ORBICULARIS_OCULI)
        return [first, *spread]

    def _settle_diagnosis_status(self, imaged: bool) -> None:
        roll = self.rng.random()
        if roll < 0.01:
            self.diagnosis.status = DiagnosisStatus.REFUTED
        elif not imaged and roll < 0.5:
            self.diagnosis.status = DiagnosisStatus.PROVISIONAL
        else:
            self.diagnosis.status = DiagnosisStatus.CONFIRMED

    # --- imaging ---

    def _offending_vessels(self) -> list[str]:
        """The vessels that truly compress the nerve: what imaging may show and surgery finds."""
        cause = self.diagnosis.secondary_cause
        if self.diagnosis.kind == HfsKind.SECONDARY and cause not in VASCULAR_CAUSES:
            return []
        if cause == SecondaryCause.VERTEBROBASILAR_DOLICHOECTASIA:
            first = self.rng.choice((Vessel.VERTEBRAL, Vessel.BASILAR))
        else:
            first = OFFENDER.pick(self.rng)
        second = OFFENDER.pick(self.rng) if self.rng.random() < 0.2 else first
        return [first] if second == first else [first, second]

    def _imaging_studies(self, onset: date) -> bool:
        if self.rng.random() >= 0.95:
            return False
        around_diagnosis = self.diagnosis.diagnosed_on + self._days(-90, 45)
        first_on = min(max(around_diagnosis, onset), self.today)
        shows_nerve = self._imaging_study(first_on)
        # A CT, an angiogram or an MRI without a CISS/FIESTA sequence (often done elsewhere) is
        # mostly followed by the clinic's own MRI; the rest make the imaging_missing worklist.
        work_up_on = first_on + self._days(14, 180)
        if not shows_nerve and self.rng.random() < 0.85 and work_up_on <= self.today:
            self._imaging_study(work_up_on, modality=ImagingModality.MRI, work_up=True)
        # A later study: before surgery, or watching a secondary cause.
        later_on = first_on + self._days(365, 4 * 365)
        if self.rng.random() < 0.15 and later_on <= self.today:
            self._imaging_study(later_on)
        return True

    def _imaging_study(self, performed_on: date, modality: str | None = None, work_up: bool = False) -> bool:
        """Write one study; answer whether it shows the nerve's root exit zone (a high-resolution
        MRI). The clinic's own work-up MRI always has its CISS or FIESTA sequence."""
        rng = self.rng
        modality = modality or MODALITY.pick(rng)
        strength = rng.choice(codes.FIELD_STRENGTHS_TESLA) if modality in MAGNETIC else None
        sequences = self._sequences(modality)
        if work_up and not codes.HIGH_RESOLUTION_SEQUENCES.intersection(sequences):
            sequences.append(rng.choice((ImagingSequence.CISS, ImagingSequence.FIESTA)))
        compression = self._compression_seen(modality, sequences)
        if compression == CompressionFound.YES:
            # Vessel contact shows in a quarter of nerves without HFS: a finding, not a diagnosis.
            vessels = self.offenders or [OFFENDER.pick(rng)]
        elif compression == CompressionFound.NO and rng.random() < 0.7:
            vessels = [Vessel.NONE_IDENTIFIED]
        else:
            vessels = []
        lesion = (
            None
            if modality == ImagingModality.ANGIOGRAPHY
            else self.diagnosis.secondary_cause in LESION_IN_REPORTS and rng.random() < 0.9
        )
        study = self.rows.add(
            ImagingStudy(
                patient=self.patient,
                diagnosis=self.diagnosis,
                performed_on=performed_on,
                modality=modality,
                field_strength_tesla=strength,
                compression_found=compression,
                lesion_found=lesion,
                report=self._report(compression, vessels, lesion),
                status=ImagingStatus.ENTERED_IN_ERROR if rng.random() < 0.005 else ImagingStatus.AVAILABLE,
            )
        )
        for sequence in sequences:
            self.rows.add(ImagingSequenceRow(study=study, sequence=sequence))
        for vessel in vessels:
            self.rows.add(ImagingVesselRow(study=study, vessel=vessel))
        return (
            modality == ImagingModality.MRI
            and study.status == ImagingStatus.AVAILABLE
            and bool(codes.HIGH_RESOLUTION_SEQUENCES.intersection(sequences))
        )

    def _sequences(self, modality: str) -> list[str]:
        rng = self.rng
        if modality == ImagingModality.MRA:
            return [ImagingSequence.TOF_MRA if rng.random() < 0.7 else ImagingSequence.CONTRAST_MRA]
        if modality != ImagingModality.MRI:
            return []
        sequences = [sequence for sequence in [HIGH_RESOLUTION.pick(rng)] if sequence]
        if rng.random() < 0.8:
            sequences.append(ImagingSequence.ROUTINE_T2)
        if rng.random() < 0.55:
            sequences.append(ImagingSequence.TOF_MRA)
        # Contrast looks for the lesion behind a secondary spasm.
        if rng.random() < (0.7 if self.diagnosis.kind == HfsKind.SECONDARY else 0.15):
            sequences.append(ImagingSequence.T1_CONTRAST)
        return sequences

    def _compression_seen(self, modality: str, sequences: Iterable[str]) -> str:
        yes, no, unsure = CompressionFound.YES, CompressionFound.NO, CompressionFound.INDETERMINATE
        if not self.offenders:
            shares = {yes: 15, no: 60, unsure: 25}
        elif codes.HIGH_RESOLUTION_SEQUENCES.intersection(sequences):
            shares = {yes: 85, no: 5, unsure: 10}
        elif modality in MAGNETIC:
            shares = {yes: 50, no: 20, unsure: 30}
        elif modality == ImagingModality.ANGIOGRAPHY:
            shares = {yes: 40, no: 0, unsure: 60}
        else:
            # CT does not show a vessel against the nerve.
            shares = {yes: 0, no: 20, unsure: 80}
        return self.rng.choices(list(shares), weights=list(shares.values()))[0]

    def _report(self, compression: str, vessels: list[str], lesion: bool | None) -> str:
        side = {Side.LEFT: "left", Side.RIGHT: "right"}.get(self.diagnosis.side, "each")
        if compression == CompressionFound.YES:
            named = " and ".join(VESSEL_IN_REPORTS[vessel] for vessel in vessels)
            finding = f"{named[0].upper()}{named[1:]} in contact with the {side} facial nerve root exit zone."
        elif compression == CompressionFound.NO:
            finding = f"No vessel in contact with the {side} facial nerve root exit zone."
        else:
            finding = f"The {side} facial nerve root exit zone is not clearly assessable."
        if lesion:
            finding += f" Findings consistent with {LESION_IN_REPORTS[self.diagnosis.secondary_cause]}."
        return finding

    # --- treatments ---

    def _treatments(self) -> None:
        """Drugs first for some, then toxin about every 3 months, then surgery for some."""
        rng = self.rng
        if self.diagnosis.status == DiagnosisStatus.REFUTED or rng.random() < 0.06:
            return
        day = self.diagnosis.diagnosed_on + self._days(0, 60)
        if day > self.today:
            return
        if rng.random() < 0.03:
            self._other_treatment(day + self._days(0, 720))
        operated = rng.random() < self._mvd_share()
        if rng.random() < 0.45:
            day = self._medication_courses(day)
            if day is None:
                return
        if rng.random() < (0.6 if operated else 0.85):
            if operated:
                until = day + self._years(mean=2, longest=8)
            else:
                until = None if rng.random() < 0.75 else day + self._years(mean=3, longest=10)
            day = self._toxin_sessions(day, until)
            if day is None:
                return
        if operated:
            self._mvd_course(day + self._days(30, 180))

    def _mvd_share(self) -> float:
        if not self.offenders:
            return 0.0
        return 0.35 if self.diagnosis.kind == HfsKind.PRIMARY else 0.25

    def _other_treatment(self, day: date) -> None:
        if day > self.today:
            return
        ends = day + self._days(30, 180)
        if ends > self.today:
            status, ends = TreatmentStatus.ACTIVE, None
        else:
            status = self.rng.choice((TreatmentStatus.COMPLETED, TreatmentStatus.STOPPED))
        self._treatment(TreatmentKind.OTHER, day, status, ends, notes=self.rng.choice(OTHER_TREATMENTS))

    def _medication_courses(self, day: date) -> date | None:
        """One drug course, or two when the first failed; the day the last ended (None: still on it)."""
        ended, reason = self._medication_course(day)
        if ended is None or reason not in REASONS_TO_TRY_ANOTHER_DRUG or self.rng.random() >= 0.4:
            return ended
        next_day = ended + self._days(0, 30)
        if next_day > self.today:
            return ended
        ended, _reason = self._medication_course(next_day)
        return ended

    def _medication_course(self, day: date) -> tuple[date | None, str]:
        rng = self.rng
        drug = DRUG.pick(rng)
        # An HLA-B*1502 carrier is not given carbamazepine (nor, cautiously, oxcarbazepine).
        if self.patient.hla_b1502_result == HlaB1502Result.POSITIVE and drug in (
            Drug.CARBAMAZEPINE,
            Drug.OXCARBAZEPINE,
        ):
            drug = Drug.GABAPENTIN
        ended = day + self._days(42, 720)
        if ended > self.today:
            status, ended, reason = TreatmentStatus.ACTIVE, None, ""
        else:
            tapered = rng.random() < 0.1
            reason = StopReason.TAPER_SUCCESS if tapered else STOP_REASON.pick(rng)
            status = TreatmentStatus.COMPLETED if tapered else TreatmentStatus.STOPPED
        treatment = self._treatment(TreatmentKind.MEDICATION, day, status, ended)
        dose_changed_on = day + self._days(14, 180) if rng.random() < 0.3 else None
        if dose_changed_on and dose_changed_on > (ended or self.today):
            dose_changed_on = None
        self.rows.add(
            MedicationDetail(
                treatment=treatment,
                drug=drug,
                daily_dose_mg=rng.choice(DAILY_DOSES_MG[drug]),
                stop_reason=reason,
                dose_changed_on=dose_changed_on,
            )
        )
        return ended, reason

    def _toxin_sessions(self, day: date, until: date | None) -> date | None:
        """Sessions from ``day`` until ``until`` (None: ongoing); the day toxin ended (None: ongoing)."""
        ongoing = until is None or until >= self.today
        last_day = self.today if ongoing else until
        product = TOXIN_PRODUCT.pick(self.rng)
        plan = self._dose_plan(product)
        session = None
        while day <= last_day:
            # A few patients change product (supply, response); units are then planned anew.
            if self.rng.random() < 0.03:
                product = TOXIN_PRODUCT.pick(self.rng)
                plan = self._dose_plan(product)
            session = self._toxin_session(day, product, plan)
            day += self._gap_to_next_session()
        if ongoing:
            if session is not None:
                session.status = TreatmentStatus.ACTIVE
            return None
        return until

    def _gap_to_next_session(self) -> timedelta:
        roll = self.rng.random()
        if roll < 0.06:
            # Under 12 weeks: the botox_interval_short flag; never under 30 days, so no 30-day
            # window ever holds two sessions.
            return self._days(70, 83)
        if roll < 0.12:
            return self._days(127, 365)
        return self._days(84, 126)

    def _dose_plan(self, product: str) -> list[tuple[str, Decimal]]:
        """Units per injected muscle, kept from session to session, within 200 units in total."""
        around_eye, elsewhere = UNITS_PER_MUSCLE[product]
        plan, total = [], Decimal(0)
        for muscle in self.muscles:
            # Some involved muscles are left alone: weakening them would show more than the spasm.
            if muscle != Muscle.ORBICULARIS_OCULI and self.rng.random() < 0.3:
                continue
            units = self.rng.choice(around_eye if muscle == Muscle.ORBICULARIS_OCULI else elsewhere)
            if total + units <= SESSION_UNITS_LIMIT:
                plan.append((muscle, units))
                total += units
        return plan or [(self.muscles[0], self.rng.choice(elsewhere))]

    def _toxin_session(self, day: date, product: str, plan: list[tuple[str, Decimal]]) -> Treatment:
        rng = self.rng
        treatment = self._treatment(TreatmentKind.BOTULINUM_TOXIN, day, TreatmentStatus.COMPLETED)
        wore_off_on = day + self._days(56, 126)
        recorded_wearing_off = wore_off_on <= self.today and rng.random() < 0.8
        improvement = round(min(max(rng.gauss(72, 15), 0), 100))
        session = self.rows.add(
            BotulinumToxinDetail(
                treatment=treatment,
                product=product,
                wore_off_on=wore_off_on if recorded_wearing_off else None,
                self_rated_improvement_pct=improvement if rng.random() < 0.85 else None,
            )
        )
        for muscle, units in plan:
            self.rows.add(ToxinInjection(session=session, muscle=muscle, units=units))
        return treatment

    def _mvd_course(self, day: date) -> None:
        if day > self.today:
            return
        # A first MVD here may redo one done elsewhere (no link to follow).
        first = self._mvd(day, redo=self.rng.random() < 0.015)
        # Recurrence (~2.4 %) or failure brings a few patients back for a second decompression.
        again = day + self._days(180, 3 * 365)
        if self.rng.random() < 0.04 and again <= self.today:
            self._mvd(again, redo=True, redo_of=first)

    def _mvd(self, day: date, *, redo: bool, redo_of: Treatment | None = None) -> Treatment:
        rng = self.rng
        treatment = self._treatment(TreatmentKind.MVD, day, TreatmentStatus.COMPLETED)
        # A large vertebral artery is moved away rather than padded.
        transposed = rng.random() < (0.5 if Vessel.VERTEBRAL in self.offenders else 0.15)
        mvd = self.rows.add(
            MvdDetail(
                treatment=treatment,
                technique=MvdTechnique.TRANSPOSITION if transposed else MvdTechnique.INTERPOSITION,
                redo=redo,
                redo_of=redo_of,
            )
        )
        vessels = self.offenders if rng.random() < 0.97 else [Vessel.NONE_IDENTIFIED]
        for vessel in vessels:
            self.rows.add(MvdVesselRow(mvd=mvd, vessel=vessel))
        for kind, rate, onset_days, lasts_days in MVD_COMPLICATIONS:
            if rng.random() >= rate:
                continue
            onset_on = day + self._days(*onset_days)
            if onset_on > self.today:
                continue
            resolved_on = onset_on + self._days(*lasts_days) if lasts_days else None
            self.rows.add(
                MvdComplication(
                    mvd=mvd,
                    kind=kind,
                    onset_on=onset_on,
                    resolved_on=resolved_on if resolved_on and resolved_on <= self.today else None,
                )
            )
        return treatment
