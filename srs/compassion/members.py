"""A compassion club's members: enrolment with the site's eligibility checklist, the steps
before a first supply (screening, informed consent to the risks, naloxone training, consent
to treatment linkage), the member's state, the site's versioned consent text, and the
treatment-linkage conversations due every ``site.compassion_linkage_review_days``.

Every function takes ``actor=`` and ``now=``; every write is audited on the member (or the
consent text) by ids only, and announced to the site's screens on topic ``club``. A member is
a client code and handle: no legal name is asked or kept, unless the site's rules need one
(``site.compassion_identity_required``). Then enrolment asks for the legal name and date of
birth (the health number optional), kept as Fernet tokens (``srs.hat.identity``, the key
``SRS_IDENTITY_KEY``), and only a prescriber or pharmacist of the site reads them back
(:func:`read_identity`, each read audited ``club_identity_read`` by ids only). Where the site
does not need one, an identity sent is refused rather than dropped or kept.

The consent is to the process, not to treatment: a linkage conversation that ends declined
(or not now) changes nothing about the member's state.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from srs import live
from srs.auth.models import Role, Staff
from srs.auth.service import Actor, record
from srs.booths.models import OPEN_STATES, Visit
from srs.clients.models import Client
from srs.compassion.models import (
    DEFAULT_ELIGIBILITY,
    LINKAGE_OUTCOMES,
    STATES,
    STEP_KEYS,
    STEPS,
    ConsentText,
    LinkageConversation,
    Member,
    MembershipStep,
)
from srs.errors import Conflict, Forbidden, Invalid, NotFound
from srs.extensions import db
from srs.hat import identity
from srs.naloxone.models import SessionTrainee, Trainee, TrainingSession
from srs.sites.models import Site

TOPIC = "club"
# Who works with members: enrols, records steps and linkage conversations.
CLUB = (Role.NURSE, Role.SCREENER, Role.PRESCRIBER, Role.SUPERVISOR, Role.ADMIN)
# Who suspends or ends a membership.
LEADS = (Role.PRESCRIBER, Role.SUPERVISOR, Role.ADMIN)
# Who writes the site's consent text.
CONSENT_WRITERS = (Role.SUPERVISOR, Role.ADMIN)
# Who may record the screening: a health care provider (BCCSU 2019).
SCREENERS = (Role.PRESCRIBER, Role.SCREENER)
# Who reads a member's legal identity, where the site keeps one (as HAT's).
IDENTITY_READERS = (Role.PRESCRIBER, Role.PHARMACIST)
IDENTITY_FIELDS = ("legal_name", "date_of_birth", "health_number")
NAME_MAX = 200
HEALTH_NUMBER_MAX = 40
STEP_LABELS = dict(STEPS)
REASON_MAX = 200
NOTE_MAX = 300
CONSENT_MAX = 20000


def _announce(site: Site) -> None:
    live.announce(site.id, TOPIC)


def _text(value, limit: int) -> str | None:
    text = (value or "").strip() if isinstance(value, str) else None
    return text[:limit] if text else None


# --- The site's club settings ------------------------------------------------------------------


def eligibility_items(site: Site) -> list[tuple[str, str]]:
    """The site's eligibility checklist as (key, label), DOMAIN.md's when the site has none."""
    items = site.compassion_eligibility or DEFAULT_ELIGIBILITY
    return [(str(key), str(label)) for key, label in items]


def waived_steps(site: Site) -> set[str]:
    return {step for step in (site.compassion_waived_steps or []) if step in STEP_KEYS}


def required_steps(site: Site) -> list[str]:
    """The steps every member needs before becoming active, in order."""
    waived = waived_steps(site)
    return [key for key in STEP_KEYS if key not in waived]


# --- Consent texts -------------------------------------------------------------------------------


def consent_texts(site: Site) -> list[ConsentText]:
    """Every version of the site's consent text, newest first."""
    return list(db.session.execute(db.select(ConsentText).where(
        ConsentText.site_id == site.id).order_by(ConsentText.version.desc())).scalars())


def current_consent_text(site: Site) -> ConsentText | None:
    return db.session.execute(db.select(ConsentText).where(
        ConsentText.site_id == site.id).order_by(ConsentText.version.desc()).limit(1)
    ).scalar_one_or_none()


def write_consent_text(site: Site, data: dict, *, actor: Actor, now: datetime) -> ConsentText:
    """A new version of the risks a member consents to; earlier versions are kept (each
    member's consent names the version they agreed to)."""
    text = (data.get("text") or "").strip()
    if not text:
        raise Invalid("Write the consent text.", {"text": ["Write the consent text."]})
    if len(text) > CONSENT_MAX:
        raise Invalid("The consent text is too long.", {"text": [
            f"At most {CONSENT_MAX:,} characters."]})
    current = current_consent_text(site)
    if current is not None and current.text == text:
        raise Invalid("Nothing changed: this is the version in force.",
                      {"text": ["The same as the version in force."]})
    version = (current.version if current else 0) + 1
    consent = ConsentText(site_id=site.id, version=version, text=text, created_at=now,
                          created_by=actor.staff_id)
    db.session.add(consent)
    db.session.flush()
    record(actor, "club_consent_text_written", "compassion_consent_text", consent.id,
           site_id=site.id, now=now, detail={"version": version})
    _announce(site)
    db.session.commit()
    return consent


# --- Members -------------------------------------------------------------------------------------


def _client_by_code(site: Site, code: str) -> Client:
    found = db.session.execute(db.select(Client).where(
        Client.site_id == site.id, Client.code == (code or "").strip().upper(),
        Client.placeholder.is_(False))).scalar_one_or_none()
    if found is None:
        raise Invalid("No client of this site has that code: a member is enrolled from a "
                      "client the site already knows.", {"code": ["No client with this code."]})
    return found


def current_membership(site: Site, client: Client) -> Member | None:
    return db.session.execute(db.select(Member).where(
        Member.site_id == site.id, Member.client_id == client.id, Member.state != "ended")
        .order_by(Member.id.desc()).limit(1)).scalar_one_or_none()


@dataclass(frozen=True)
class Identity:
    legal_name: str | None
    date_of_birth: date | None
    health_number: str | None


def _identity_columns(site: Site, data: dict, *, now: datetime) -> dict:
    """The encrypted identity columns of a new member: none where the site keeps no identity
    (one sent is refused: the site's rules do not allow keeping it), the legal name and date of
    birth required where it does. Raises Invalid naming the fields."""
    name = (data.get("legal_name") or "").strip()
    born = data.get("date_of_birth")
    number = (data.get("health_number") or "").strip()
    if not site.compassion_identity_required:
        sent = [key for key, value in zip(IDENTITY_FIELDS, (name, born, number), strict=True)
                if value]
        if sent:
            raise Invalid("This site keeps no legal identity for club members: enrol by code "
                          "only.", {key: ["Not kept at this site."] for key in sent})
        return {}
    errors = {}
    if not name:
        errors["legal_name"] = ["Give the legal name: this site's rules need it."]
    elif len(name) > NAME_MAX:
        errors["legal_name"] = [f"At most {NAME_MAX} characters."]
    if born is None:
        errors["date_of_birth"] = ["Give the date of birth: this site's rules need it."]
    elif not isinstance(born, date) or born > site.local_date(now) or born.year < 1900:
        errors["date_of_birth"] = ["Give a real date of birth, not in the future."]
    if len(number) > HEALTH_NUMBER_MAX:
        errors["health_number"] = [f"At most {HEALTH_NUMBER_MAX} characters."]
    if errors:
        raise Invalid("This site's rules need the member's legal name and date of birth.",
                      errors)
    return {"legal_name_enc": identity.encrypt(name),
            "date_of_birth_enc": identity.encrypt(born.isoformat()),
            "health_number_enc": identity.encrypt(number or None)}


def may_read_identity(site: Site, actor: Actor) -> bool:
    staff = None if actor.staff_id is None else db.session.get(Staff, actor.staff_id)
    return staff is not None and staff.has_role(site.id, *IDENTITY_READERS)


def identity_held(member: Member) -> bool:
    return member.legal_name_enc is not None or member.date_of_birth_enc is not None


def read_identity(site: Site, member: Member, *, actor: Actor, now: datetime) -> Identity:
    """The member's legal identity, for a prescriber or pharmacist of the site; the read is
    audited (``club_identity_read``, ids only). Raises Forbidden for anyone else."""
    if member.site_id != site.id or not may_read_identity(site, actor):
        raise Forbidden("Only a prescriber or pharmacist at this site may read a member's "
                        "identity.")
    born = identity.decrypt(member.date_of_birth_enc)
    found = Identity(identity.decrypt(member.legal_name_enc),
                     date.fromisoformat(born) if born else None,
                     identity.decrypt(member.health_number_enc))
    record(actor, "club_identity_read", "compassion_member", member.id, site_id=site.id,
           now=now, detail={"client_id": member.client_id})
    db.session.commit()
    return found


def enrol_member(site: Site, data: dict, *, actor: Actor, now: datetime) -> Member:
    """Enrol the site's client (by ``code``) as an applicant with the site's eligibility
    checklist (``eligibility``: {key: {met, note}}) and, where the site's rules need one, the
    legal identity (``legal_name``, ``date_of_birth``, ``health_number``). Raises Invalid, or
    Conflict when the client is a member already. A site that waives every step gets an active
    member."""
    client = _client_by_code(site, data.get("code", ""))
    if current_membership(site, client) is not None:
        raise Conflict("This client is already a member of the club.")
    items = eligibility_items(site)
    keys = [key for key, _label in items]
    checklist = data.get("eligibility") or {}
    unknown = set(checklist) - set(keys)
    if unknown:
        raise Invalid("Unknown eligibility items.", {"eligibility": [
            f"Unknown item: {', '.join(sorted(unknown))}."]})
    eligibility = {key: {"met": bool((checklist.get(key) or {}).get("met")),
                         "note": _text((checklist.get(key) or {}).get("note"), NOTE_MAX)}
                   for key in keys}
    member = Member(site_id=site.id, client_id=client.id, state="applicant", applied_at=now,
                    applied_by=actor.staff_id, eligibility=eligibility,
                    **_identity_columns(site, data, now=now))
    db.session.add(member)
    db.session.flush()
    record(actor, "club_member_enrolled", "compassion_member", member.id, site_id=site.id,
           now=now, detail={"client": client.id,
                            "met": sorted(k for k, v in eligibility.items() if v["met"])})
    _activate_if_ready(site, member, actor=actor, now=now)
    _announce(site)
    db.session.commit()
    return member


def _lapse_suspensions(site: Site, members, *, actor: Actor, now: datetime) -> None:
    """Suspensions whose ``until`` has passed end at the read: the member is active again."""
    lapsed = [m for m in members if m.state == "suspended" and m.suspended_until is not None
              and m.suspended_until <= now]
    for member in lapsed:
        member.state = "active"
        member.suspended_reason = None
        record(actor, "club_member_reinstated", "compassion_member", member.id,
               site_id=site.id, now=now, detail={"why": "suspension_ended",
                                                 "until": member.suspended_until.isoformat()})
        member.suspended_until = None
    if lapsed:
        _announce(site)
        db.session.commit()


def lapse_suspensions(*, now: datetime) -> int:
    """The job: every suspension whose ``until`` has passed, at every site. Returns how many."""
    members = list(db.session.execute(db.select(Member).where(
        Member.state == "suspended", Member.suspended_until <= now)).scalars())
    by_site: dict[int, list[Member]] = {}
    for member in members:
        by_site.setdefault(member.site_id, []).append(member)
    for site_id, found in by_site.items():
        _lapse_suspensions(db.session.get(Site, site_id), found, actor=Actor.system(),
                           now=now)
    return len(members)


def get_member(site: Site, member_id: int, *, actor: Actor, now: datetime) -> Member:
    member = db.session.get(Member, member_id)
    if member is None or member.site_id != site.id:
        raise NotFound("No such member at this site.")
    _lapse_suspensions(site, [member], actor=actor, now=now)
    return member


def list_members(site: Site, *, state: str | None = None, actor: Actor,
                 now: datetime) -> list[Member]:
    """The site's members (``state``: only those), by code."""
    if state is not None and state not in STATES:
        raise Invalid("Unknown state.", {"state": [f"Choose one of {', '.join(STATES)}."]})
    _lapse_suspensions(site, db.session.execute(db.select(Member).where(
        Member.site_id == site.id, Member.state == "suspended")).scalars(), actor=actor,
        now=now)
    query = db.select(Member).join(Client, Client.id == Member.client_id).where(
        Member.site_id == site.id)
    if state is not None:
        query = query.where(Member.state == state)
    return list(db.session.execute(query.order_by(Client.code, Member.id)).scalars())


@dataclass
class StepRow:
    key: str
    label: str
    required: bool
    done: MembershipStep | None


def step_rows(site: Site, member: Member) -> list[StepRow]:
    """Each step with whether the site requires it and, once done, who and when."""
    done = {step.step: step for step in member.steps}
    waived = waived_steps(site)
    return [StepRow(key, label, key not in waived, done.get(key)) for key, label in STEPS]


def steps_missing(site: Site, member: Member) -> list[str]:
    done = {step.step for step in member.steps}
    return [key for key in required_steps(site) if key not in done]


def _activate_if_ready(site: Site, member: Member, *, actor: Actor, now: datetime) -> None:
    if member.state == "applicant" and not steps_missing(site, member):
        member.state = "active"
        member.active_since = now
        record(actor, "club_member_activated", "compassion_member", member.id,
               site_id=site.id, now=now,
               detail={"steps": [s.step for s in member.steps],
                       "waived": sorted(waived_steps(site))})


def _client_sessions(site: Site, client_id: int) -> list[TrainingSession]:
    return list(db.session.execute(
        db.select(TrainingSession).join(SessionTrainee,
                                        SessionTrainee.session_id == TrainingSession.id)
        .join(Trainee, Trainee.id == SessionTrainee.trainee_id)
        .where(TrainingSession.site_id == site.id, Trainee.client_id == client_id)
        .order_by(TrainingSession.held_on.desc(), TrainingSession.id.desc())).scalars())


def training_sessions(site: Site, member: Member) -> list[TrainingSession]:
    """The naloxone training sessions the member's client took part in at the site."""
    return _client_sessions(site, member.client_id)


def record_step(site: Site, member_id: int, data: dict, *, actor: Actor,
                now: datetime) -> MembershipStep:
    """Record a step (``step``, optional ``note``): screening by a prescriber or screener
    only; risk consent names the site's consent text in force; naloxone training links the
    client's session (``training_session_id``) or records that training was given now.
    Once every step the site requires is done, the applicant becomes active."""
    member = get_member(site, member_id, actor=actor, now=now)
    step = data.get("step")
    if step not in STEP_KEYS:
        raise Invalid("Unknown step.", {"step": [f"Choose one of {', '.join(STEP_KEYS)}."]})
    if member.state == "ended":
        raise Conflict("This membership has ended.", current_state=member.state)
    if any(s.step == step for s in member.steps):
        raise Conflict(f"{STEP_LABELS[step]}: recorded already.", current_state=member.state)
    consent, session_id = None, None
    if step == "screening":
        staff = None if actor.staff_id is None else db.session.get(Staff, actor.staff_id)
        if staff is None or not staff.has_role(site.id, *SCREENERS):
            raise Forbidden("Only a prescriber or a screener at this site may record the "
                            "screening.")
    elif step == "risk_consent":
        consent = current_consent_text(site)
        if consent is None:
            raise Invalid("The site has no consent text yet: a supervisor writes it first.",
                          {"step": ["No consent text to consent to."]})
    elif step == "naloxone_training" and data.get("training_session_id") is not None:
        session_id = data["training_session_id"]
        if session_id not in {s.id for s in _client_sessions(site, member.client_id)}:
            raise Invalid("That training session did not train this client.", {
                "training_session_id": ["Choose a session this client took part in."]})
    row = MembershipStep(member=member, step=step, at=now, by=actor.staff_id,
                         consent_text_id=consent.id if consent else None,
                         training_session_id=session_id,
                         note=_text(data.get("note"), NOTE_MAX))
    db.session.add(row)
    db.session.flush()
    record(actor, "club_step_recorded", "compassion_member", member.id, site_id=site.id,
           now=now, detail={"step": step, "consent_version": (
               consent.version if consent else None),
               "training_session": row.training_session_id})
    _activate_if_ready(site, member, actor=actor, now=now)
    _announce(site)
    db.session.commit()
    return row


def suspend_member(site: Site, member_id: int, data: dict, *, actor: Actor,
                   now: datetime) -> Member:
    """Suspend an active member with a ``reason`` ``until`` a time to come; they are active
    again once it passes."""
    member = get_member(site, member_id, actor=actor, now=now)
    reason, until = _text(data.get("reason"), REASON_MAX), data.get("until")
    errors = {}
    if not reason:
        errors["reason"] = ["Say why."]
    if until is None:
        errors["until"] = ["Say until when."]
    elif until <= now:
        errors["until"] = ["A time to come, please."]
    if errors:
        raise Invalid("A suspension needs a reason and an end.", errors)
    if member.state != "active":
        raise Conflict(f"Only an active member can be suspended; this one is {member.state}.",
                       current_state=member.state)
    member.state, member.suspended_reason, member.suspended_until = "suspended", reason, until
    record(actor, "club_member_suspended", "compassion_member", member.id, site_id=site.id,
           now=now, detail={"until": until.isoformat()})
    _announce(site)
    db.session.commit()
    return member


def end_membership(site: Site, member_id: int, data: dict, *, actor: Actor,
                   now: datetime) -> Member:
    member = get_member(site, member_id, actor=actor, now=now)
    reason = _text(data.get("reason"), REASON_MAX)
    if not reason:
        raise Invalid("Say why the membership ends.", {"reason": ["Say why."]})
    if member.state == "ended":
        raise Conflict("This membership has ended already.", current_state=member.state)
    member.state, member.ended_at, member.ended_reason = "ended", now, reason
    member.suspended_reason = member.suspended_until = None
    record(actor, "club_member_ended", "compassion_member", member.id, site_id=site.id,
           now=now)
    _announce(site)
    db.session.commit()
    return member


# --- Treatment linkage ---------------------------------------------------------------------------


def linkage_history(member: Member) -> list[LinkageConversation]:
    return list(db.session.execute(db.select(LinkageConversation).where(
        LinkageConversation.member_id == member.id).order_by(
        LinkageConversation.at.desc(), LinkageConversation.id.desc())).scalars())


def linkage_due_at(site: Site, member: Member) -> datetime | None:
    """When the next linkage conversation is due: the site's review days after the last one,
    or after the member became active (None for a member not active or suspended)."""
    if member.state not in ("active", "suspended") or member.active_since is None:
        return None
    last = db.session.scalar(db.select(db.func.max(LinkageConversation.at)).where(
        LinkageConversation.member_id == member.id))
    since = max(last, member.active_since) if last is not None else member.active_since
    return since + timedelta(days=site.compassion_linkage_review_days)


def linkage_due(site: Site, member: Member, *, now: datetime) -> bool:
    due = linkage_due_at(site, member)
    return due is not None and due <= now


def open_visit(site: Site, member: Member) -> Visit | None:
    return db.session.execute(db.select(Visit).where(
        Visit.site_id == site.id, Visit.client_id == member.client_id,
        Visit.state.in_(OPEN_STATES))).scalar_one_or_none()


def _referral(site: Site, member: Member, data: dict, *, actor: Actor, now: datetime):
    """The referral made with an accepted conversation, through the referral engine: it is
    made during a visit (the floor's offer), so the member needs an open one."""
    from srs.referrals import service as referrals

    visit = open_visit(site, member)
    if visit is None:
        raise Invalid("A referral is made during a visit: check the member in first, or "
                      "note where they were referred.", {"service_id": [
                          "The member has no open visit: leave the service out and "
                          "write a note."]})
    service = referrals.get_service(site, data["service_id"])
    offer = referrals.record_offer(visit, {
        "service_type": service.service_type, "status": "accepted",
        "service_id": service.id, "consent": True}, actor=actor, now=now)
    return offer.referral


def record_linkage(site: Site, member_id: int, data: dict, *, actor: Actor,
                   now: datetime) -> LinkageConversation:
    """A treatment-linkage conversation: ``outcome`` offered, accepted, declined or not now,
    an optional ``note``; with an accepted one, an optional ``service_id`` makes a referral
    through the referral engine. Declining changes nothing about the membership."""
    member = get_member(site, member_id, actor=actor, now=now)
    outcome = data.get("outcome")
    if outcome not in LINKAGE_OUTCOMES:
        raise Invalid("Choose how the conversation ended.", {"outcome": [
            f"Choose one of {', '.join(LINKAGE_OUTCOMES)}."]})
    if data.get("service_id") is not None and outcome != "accepted":
        raise Invalid("A referral goes with an accepted conversation.",
                      {"service_id": ["Only when the member accepted."]})
    if member.state == "ended":
        raise Conflict("This membership has ended.", current_state=member.state)
    referral = None
    if data.get("service_id") is not None:
        referral = _referral(site, member, data, actor=actor, now=now)
    conversation = LinkageConversation(
        member_id=member.id, at=now, by=actor.staff_id, outcome=outcome,
        referral_id=referral.id if referral is not None else None,
        note=_text(data.get("note"), NOTE_MAX))
    db.session.add(conversation)
    db.session.flush()
    record(actor, "club_linkage_recorded", "compassion_member", member.id, site_id=site.id,
           now=now, detail={"outcome": outcome, "conversation": conversation.id,
                            "referral": conversation.referral_id})
    _announce(site)
    db.session.commit()
    return conversation


def suggestions(site: Site, member: Member, *, actor: Actor, now: datetime) -> list:
    """The referral engine's suggestions for the member now, each with its reason, as the
    floor shows them: computed on their open visit, else their latest visit at the site,
    else as at a first visit now (nothing is stored for that one). The read is audited by
    the engine."""
    from srs.referrals import service as referrals

    visit = open_visit(site, member) or db.session.execute(db.select(Visit).where(
        Visit.site_id == site.id, Visit.client_id == member.client_id)
        .order_by(Visit.arrived_at.desc()).limit(1)).scalar_one_or_none()
    if visit is None:
        visit = Visit(site_id=site.id, client_id=member.client_id, arrived_at=now,
                      state="waiting")
        visit.client = member.client
    ranked, _answered = referrals.suggestions(visit, actor=actor, now=now)
    if visit.id is None and visit in db.session:  # the stand-in is never stored
        db.session.expunge(visit)
    return ranked
