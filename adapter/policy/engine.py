"""The disclosure decision: may this finding go to this requester, for this purpose, now?

Every path that emits data asks :func:`decide` for each finding before writing or sending it,
and keeps the :class:`Decision` (its effect and the reasons) for the audit trail.

Policy decided here, in the order applied (the first rule that denies decides):

1. A request with no purpose of use is refused when the policy says so (``purpose_required``);
   a purpose the policy never permits (``never``) is denied whatever a Consent says.
2. The Consents in force at the decision's instant (status active, instant in their period,
   :meth:`Consent.in_force`) decide; with none, the policy's ``no_consent`` rule does.
3. Within a Consent, the base decision holds unless a nested provision applies to the request;
   the deepest applying provision decides (FHIR's exceptions: "provision ... exceptions to the
   base policy", https://hl7.org/fhir/R4/consent.html). A provision applies when each of its
   conditions it states matches: period, purpose, actor, resource type, code.
4. Several Consents combine as the policy says: deny-overrides (any deny wins, XACML 3.0 C.2)
   or most-recent (the latest ``date`` decides).
5. A secondary finding needs an explicit permit: the deciding provision must be a permit that
   names the adapter's code for secondary findings, overall or for the gene's ACMG category
   (:data:`SECONDARY_FINDINGS`, :data:`CATEGORY_CODES`). A Consent's general permit is not
   consent to secondary findings.
6. Research purposes (``research`` in the policy) need an explicit research permit: the
   deciding provision's ``purpose`` names it, or one of the policy's GA4GH DUO codes.
7. A minor (age at the decision below ``age_of_majority``, from the birth date) gets no
   adult-onset secondary finding unless the policy allows a guardian's permit and the permitting
   provision also names :data:`ADULT_ONSET_IN_MINOR`. An adult-onset flag the table does not
   give (None) counts as adult onset: withholding is the safe side. A minor rule that needs the
   birth date and has none is a :class:`PolicyError`.
8. Break-glass (emergency access) never unlocks a secondary finding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Final

from ..errors import PolicyError
from ..fhir.codes import SECURITY_LABELS
from .consent import Coding, Consent, ConsentProvision, ProvisionType, Reference
from .rules import ACT_REASON, Combining, MinorOnset, Policy
from .secondary import Category, SecondaryFindingDecision, acmg_sf_list

__all__ = [
    "ADULT_ONSET_IN_MINOR",
    "CATEGORY_CODES",
    "DISCLOSURE",
    "LABEL_SECONDARY_FINDING",
    "SECONDARY_FINDINGS",
    "Decision",
    "Effect",
    "Item",
    "Reason",
    "Request",
    "decide",
    "item_of",
]

#: the adapter's code system for what a Consent permits of genomic results (our convention)
DISCLOSURE: Final = "https://fhir-genomics-adapter.dev/fhir/CodeSystem/genomic-disclosure"
SECONDARY_FINDINGS: Final = Coding(DISCLOSURE, "secondary-findings")
CATEGORY_CODES: Final = {c: Coding(DISCLOSURE, f"secondary-findings-{c.value}") for c in Category}
ADULT_ONSET_IN_MINOR: Final = Coding(DISCLOSURE, "adult-onset-in-minor")
_GENOMIC_LABELS: Final = frozenset(Coding(c["system"], c["code"]) for c in SECURITY_LABELS)
#: the security label of a secondary finding (adapter.policy.labels puts it on resources)
LABEL_SECONDARY_FINDING: Final = Coding(DISCLOSURE, "secondary-finding", "Secondary finding")


class Effect(StrEnum):
    PERMIT = "permit"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class Reason:
    """One step of a decision's explanation: the rule applied and, when a Consent decided,
    which one and which of its provisions (e.g. ``provision.provision[1]``)."""

    rule: str  # e.g. "policy.never", "consent", "secondary-finding", "minor"
    text: str
    consent: str | None = None
    provision: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    effect: Effect
    reasons: tuple[Reason, ...]

    @property
    def permitted(self) -> bool:
        return self.effect is Effect.PERMIT


@dataclass(frozen=True, slots=True)
class Request:
    """Who asks, for what, when: the part of a decision that does not depend on the finding."""

    purpose: str | None  # a v3 ActReason code, e.g. "TREAT"
    at: datetime  # the decision's instant, timezone-aware
    birth_date: date | None = None  # the patient's, for the minor rule
    actor: Reference | None = None  # the recipient, matched against provision actors
    break_glass: bool = False


@dataclass(frozen=True, slots=True)
class Item:
    """What would be disclosed: a result of the report, and whether it is a secondary
    finding (its gene on the ACMG list and outside the order's indication)."""

    resource_type: str = "Observation"
    secondary: Category | None = None  # the ACMG category when it is a secondary finding
    adult_onset: bool | None = None  # from the ACMG table; None: not derived


def decide(item: Item, request: Request, consents: Sequence[Consent], policy: Policy) -> Decision:
    """Permit or deny ``item`` for ``request`` under the patient's ``consents``, explained."""
    if (refusal := _purpose_refusal(request, policy)) is not None:
        return Decision(Effect.DENY, (refusal,))
    in_force = [c for c in consents if c.in_force(request.at)]
    if not in_force:
        return _by_default(item, request, policy)
    effect, verdict = _combined([_verdict(c, item, request, policy) for c in in_force], policy)
    reasons = (verdict.reason(),)
    if effect is Effect.DENY or item.secondary is None:
        return Decision(effect, reasons)
    return _secondary(item, request, policy, reasons, verdict.provision)


# ---- purpose of use --------------------------------------------------------------------


def _purpose_refusal(request: Request, policy: Policy) -> Reason | None:
    if request.purpose is None:
        if policy.purpose_required:
            return Reason("policy.purpose_required", "the request names no purpose of use")
        return None
    if request.purpose in policy.never:
        text = f"nothing is disclosed for {request.purpose}: {policy.never_source}"
        return Reason("policy.never", text)
    return None


# ---- no consent in force ---------------------------------------------------------------


def _by_default(item: Item, request: Request, policy: Policy) -> Decision:
    """The policy's ``no_consent`` rule."""
    rule, purpose = policy.no_consent, request.purpose
    if purpose in policy.research and not rule.research:
        return _denied("policy.no_consent", "research needs a research consent; none is in force")
    if purpose is not None and purpose not in rule.purposes:
        allowed = ", ".join(sorted(rule.purposes))
        return _denied("policy.no_consent", f"with no consent in force only {allowed} is permitted")
    if item.secondary is not None and not rule.secondary_findings:
        text = "secondary findings need a consent that permits them; none is in force"
        return _denied("policy.no_consent", text)
    reasons = (Reason("policy.no_consent", f"no consent in force; {purpose} is permitted"),)
    if item.secondary is None:
        return Decision(Effect.PERMIT, reasons)
    return _secondary(item, request, policy, reasons, None)


def _denied(rule: str, text: str) -> Decision:
    return Decision(Effect.DENY, (Reason(rule, text),))


# ---- one Consent -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Verdict:
    """What one Consent says of a request: permit, deny, or nothing (None)."""

    effect: Effect | None
    consent: Consent | None
    provision: ConsentProvision | None
    path: str | None
    text: str

    def reason(self) -> Reason:
        consent = self.consent
        name = None if consent is None or consent.id is None else f"Consent/{consent.id}"
        return Reason("consent", self.text, consent=name, provision=self.path)


def _verdict(consent: Consent, item: Item, request: Request, policy: Policy) -> _Verdict:
    """The deepest provision of ``consent`` that applies decides; a Consent whose root does
    not apply says nothing, and so does a general permit of a secondary finding or of
    research (they need an explicit one)."""
    root = consent.provision
    if not _applies(root, item, request, policy, root=True):
        return _Verdict(None, consent, None, None, "the consent does not cover this request")
    provision, path = _deepest(root, item, request, policy, "provision")
    effect = Effect(provision.type.value)
    if effect is Effect.PERMIT and not _explicit_enough(provision, item, request, policy):
        what = "secondary findings" if item.secondary is not None else "research"
        text = f"the consent permits, but does not name {what}"
        return _Verdict(None, consent, provision, path, text)
    verb = "permits" if effect is Effect.PERMIT else "denies"
    text = f"the consent's {'base decision' if path == 'provision' else 'provision'} {verb}"
    return _Verdict(effect, consent, provision, path, text)


def _deepest(
    node: ConsentProvision, item: Item, request: Request, policy: Policy, path: str
) -> tuple[ConsentProvision, str]:
    """Down the applying provisions to the deepest. Of siblings that apply, a deny goes
    first (the safe side), then a permit naming the item's codes, then the first permit."""
    applying = [(i, c) for i, c in enumerate(node.provisions) if _applies(c, item, request, policy)]
    if not applying:
        return node, path
    codes = _item_codes(item)
    i, child = min(
        applying,
        key=lambda found: (
            found[1].type is not ProvisionType.DENY,
            not codes & set(found[1].codes),
            found[0],
        ),
    )
    return _deepest(child, item, request, policy, f"{path}.provision[{i}]")


def _explicit_enough(
    provision: ConsentProvision, item: Item, request: Request, policy: Policy
) -> bool:
    """A permit of a secondary finding must name it; one for research, the purpose or one of
    the policy's DUO codes."""
    if item.secondary is not None:
        secondary = {SECONDARY_FINDINGS, CATEGORY_CODES[item.secondary]}
        if not secondary & set(provision.codes):
            return False
    if request.purpose in policy.research:
        return not _purposes_of(request, policy).isdisjoint(provision.purposes)
    return True


def _purposes_of(request: Request, policy: Policy) -> set[Coding]:
    """The codes a provision's ``purpose`` may name the request's purpose by: its v3
    ActReason code, and for research the policy's GA4GH DUO codes."""
    found = {Coding(ACT_REASON, request.purpose or "")}
    if request.purpose in policy.research:
        found |= {Coding(policy.duo_system, code) for code in policy.research_duo}
    return found


# ---- does a provision apply? -----------------------------------------------------------

#: the consent actions a disclosure counts as (http://terminology.hl7.org/CodeSystem/consentaction)
_ACTIONS: Final = frozenset({"disclose", "access", "use"})
_ACTION_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/consentaction"


def _applies(
    provision: ConsentProvision,
    item: Item,
    request: Request,
    policy: Policy,
    *,
    root: bool = False,
) -> bool:
    """Whether each condition the provision states matches. A condition that cannot be told
    (no actor or purpose in the request, a data period or data reference the item does not
    carry) is taken the safe way: a deny applies, a permit does not. The root's type is the
    base decision, so its unknown conditions never widen it either."""
    found = [
        _within(provision, request),
        _purpose(provision, request, policy),
        _actor(provision, request),
        _kind(provision, item),
        _action(provision),
        None if provision.data_period is not None or provision.data else True,
    ]
    if False in found:
        return False
    return None not in found or (provision.type is ProvisionType.DENY and not root)


def _within(provision: ConsentProvision, request: Request) -> bool:
    return provision.period is None or provision.period.contains(request.at)


def _purpose(provision: ConsentProvision, request: Request, policy: Policy) -> bool | None:
    if not provision.purposes:
        return True
    if request.purpose is None:
        return None
    return not _purposes_of(request, policy).isdisjoint(provision.purposes)


def _actor(provision: ConsentProvision, request: Request) -> bool | None:
    references = [a.reference for a in provision.actors if a.reference is not None]
    if not references:
        return True
    if request.actor is None:
        return None
    return request.actor in references


def _kind(provision: ConsentProvision, item: Item) -> bool:
    """Resource type, document type, code and security label, against the item's."""
    if provision.resource_types and item.resource_type not in provision.resource_types:
        return False
    if provision.document_types and not provision.resource_types:
        return False  # a CDA or other document type: not a resource this adapter emits
    codes = _item_codes(item)
    if provision.codes and not codes & set(provision.codes):
        return False
    labels = _item_labels(item)
    return not provision.security_labels or bool(labels & set(provision.security_labels))


def _item_labels(item: Item) -> set[Coding]:
    """The security labels the item carries (adapter.policy.labels): R and GDIS on every
    genomic result, secondary-finding on a secondary finding."""
    if item.secondary is None:
        return set(_GENOMIC_LABELS)
    return {*_GENOMIC_LABELS, LABEL_SECONDARY_FINDING}


def _item_codes(item: Item) -> set[Coding]:
    if item.secondary is None:
        return set()
    return {SECONDARY_FINDINGS, CATEGORY_CODES[item.secondary]}


def _action(provision: ConsentProvision) -> bool:
    if not provision.actions:
        return True
    return any(a.system == _ACTION_SYSTEM and a.code in _ACTIONS for a in provision.actions)


# ---- several Consents ------------------------------------------------------------------


def _combined(verdicts: list[_Verdict], policy: Policy) -> tuple[Effect, _Verdict]:
    """Deny-overrides: a deny, else a permit, else nothing. Most-recent: the latest Consent's
    verdict. Nothing, in the end, is a deny: no Consent in force permits the request."""
    if policy.combining is Combining.MOST_RECENT:
        chosen = max(verdicts, key=lambda v: _agreed(v.consent))
    else:
        chosen = next(
            (v for v in verdicts if v.effect is Effect.DENY),
            next((v for v in verdicts if v.effect is Effect.PERMIT), verdicts[0]),
        )
    if chosen.effect is None:
        text = f"{chosen.text}, and no consent in force permits the request"
        return Effect.DENY, _Verdict(None, chosen.consent, chosen.provision, chosen.path, text)
    return chosen.effect, chosen


def _agreed(consent: Consent | None) -> datetime:
    """When a Consent was agreed; one without a date sorts first."""
    found = consent.agreed_at if consent is not None else None
    return found if found is not None else datetime.min.replace(tzinfo=UTC)


# ---- secondary findings ----------------------------------------------------------------


def _secondary(
    item: Item,
    request: Request,
    policy: Policy,
    reasons: tuple[Reason, ...],
    provision: ConsentProvision | None,
) -> Decision:
    """A permitted secondary finding, checked against break-glass and the minor rule."""
    if request.break_glass:
        text = "break-glass access never discloses a secondary finding"
        return Decision(Effect.DENY, (*reasons, Reason("break-glass", text)))
    if not _minor(request, policy) or item.adult_onset is False:
        return Decision(Effect.PERMIT, (*reasons, Reason("secondary-finding", "permitted")))
    guardian = provision is not None and ADULT_ONSET_IN_MINOR in provision.codes
    if policy.minors.adult_onset is MinorOnset.WITHHOLD_UNLESS_GUARDIAN_PERMITS and guardian:
        text = "adult-onset finding of a minor, permitted by the guardian's consent"
        return Decision(Effect.PERMIT, (*reasons, Reason("minor", text)))
    onset = "adult-onset" if item.adult_onset else "possibly adult-onset (not derived)"
    text = f"a {onset} secondary finding of a minor is withheld"
    return Decision(Effect.DENY, (*reasons, Reason("minor", text)))


def _minor(request: Request, policy: Policy) -> bool:
    if request.birth_date is None:
        raise PolicyError(
            "the minor rule needs the patient's birth date (Patient.birthDate) to decide on a "
            "secondary finding; give it, or nothing of that finding is disclosed",
            field="Patient.birthDate",
        )
    born, on = request.birth_date, request.at.date()
    age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return age < policy.minors.age_of_majority


# ---- primary or secondary --------------------------------------------------------------


def item_of(
    gene: str | None,
    indication: frozenset[str],
    decisions: Mapping[str, SecondaryFindingDecision],
) -> Item | None:
    """What a result of ``gene`` is to the policy, given the genes the order asked about
    (``indication``) and the ACMG decisions of the report (:func:`evaluate_secondary_findings`):
    a primary result (in the indication, or off the ACMG list), a secondary finding (listed,
    outside the indication, reportable by its gene's rule), or None: listed, outside the
    indication and not reportable by the ACMG rule (a single MUTYH allele), so never disclosed."""
    decision = decisions.get(gene) if gene is not None else None
    listing = acmg_sf_list().genes.get(gene) if gene is not None else None
    if gene is None or gene in indication or listing is None:
        return Item()
    if decision is None or not decision.reportable:
        return None
    return Item(secondary=listing.category, adult_onset=listing.adult_onset)
