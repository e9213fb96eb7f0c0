"""The adapter's conformance layer: FHIR R4 (4.0.1) and the Genomics Reporting IG STU3.

``load_validator()`` builds the process-wide :class:`Validator` from the pinned packages
(:mod:`adapter.packages`); ``validate_path()`` checks a JSON resource, a Bundle or an NDJSON
file. Profiles are compiled from their snapshots on first use, and each compiled element
becomes generated Python on first use, so a resource costs about as much to validate as to
build.

Checked: unknown elements; JSON types and lexical forms of primitives (the core package's
regexes); choice types ``[x]``; min/max cardinality of every element, inside slices too;
slices by value/pattern discriminators (``value``, ``code``, ``coding``, ``url``...),
required slices and each slice's own rules; ``fixed[x]`` and ``pattern[x]``; required and
extensible bindings to ValueSets expandable from the loaded packages; extensions against
their definitions; the target types of literal references (``urn:uuid`` ones through the
enclosing Bundle); Bundle entries against their own profiles; a handful of invariants
(:mod:`.invariants`).

Not checked, by design:

* other FHIRPath invariants (no FHIRPath engine): the IG's own, per-1, ref-1, dom-6,
  txt-1/txt-2 (XHTML content rules; narrative is only checked to be a ``<div>``), ...;
* codes of systems that no loaded package enumerates: LOINC answer lists (``LL...``), HGNC,
  Sequence Ontology, ClinVar, ... A *required* binding to such a ValueSet gives the warning
  "binding not checkable"; an extensible one is not reported. HGVS, MIME types, language
  tags and currencies are checked by syntax only;
* slices discriminated by ``profile``/``resolve()``, ``type`` (outside choice elements) or
  ``exists``: such items are checked against the sliced element; a required one is a
  warning;
* ordered slicing, and references beyond their target type (nothing is resolved).
"""

from __future__ import annotations

from .report import ValidationReport, load_validator, validate_path
from .validator import Validator

__all__ = ["ValidationReport", "Validator", "load_validator", "validate_path"]
