/*
 * The per-variant hot path in C: variant ids, allele notation, the fast lane of encoding and
 * the annotations of annotated variants (their entries read, their molecular-consequences made).
 *
 * Python describes what this computes and stays the reference: adapter/notation.py
 * (describe), adapter/fhir/identifiers.py (IdFactory) and adapter/fhir/variant.py (_Encoder)
 * call in here, and the tests hold both sides to the same bytes. Anything out of the
 * ordinary (non-ASCII text, huge numbers, a lane not proven yet) is declined with None and
 * left to Python.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <structmember.h>

/* ---- SHA-1 (FIPS 180-4, section 6.1), for UUIDv5 ids --------------------------------- */

typedef struct {
    uint32_t h[5];
    uint64_t length;
    unsigned char block[64];
    size_t used;
} Sha1;

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

/* One block. Rounds unrolled five at a time with the variables' roles rotating instead of
 * their values, and the message schedule kept as a ring of 16 words (FIPS 180-4, 6.1.3). */
#define SHA1_W(i)                                                                            \
    ((i) < 16 ? w[(i)]                                                                      \
              : (w[(i) & 15] = rol(w[((i) - 3) & 15] ^ w[((i) - 8) & 15] ^                  \
                                       w[((i) - 14) & 15] ^ w[(i) & 15],                     \
                                   1)))
#define SHA1_CH(b, c, d) ((d) ^ ((b) & ((c) ^ (d))))
#define SHA1_PARITY(b, c, d) ((b) ^ (c) ^ (d))
#define SHA1_MAJ(b, c, d) (((b) & (c)) | ((d) & ((b) | (c))))
#define SHA1_STEP(f, k, a, b, c, d, e, i)                                                    \
    e += rol(a, 5) + f(b, c, d) + (k) + SHA1_W(i);                                           \
    b = rol(b, 30);
#define SHA1_FIVE(f, k, i)                                                                   \
    SHA1_STEP(f, k, a, b, c, d, e, (i))                                                      \
    SHA1_STEP(f, k, e, a, b, c, d, (i) + 1)                                                  \
    SHA1_STEP(f, k, d, e, a, b, c, (i) + 2)                                                  \
    SHA1_STEP(f, k, c, d, e, a, b, (i) + 3)                                                  \
    SHA1_STEP(f, k, b, c, d, e, a, (i) + 4)

static void sha1_compress(uint32_t h[5], const unsigned char *p)
{
    uint32_t w[16];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 |
               (uint32_t)p[4 * t + 2] << 8 | (uint32_t)p[4 * t + 3];
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    SHA1_FIVE(SHA1_CH, 0x5a827999u, 0)
    SHA1_FIVE(SHA1_CH, 0x5a827999u, 5)
    SHA1_FIVE(SHA1_CH, 0x5a827999u, 10)
    SHA1_FIVE(SHA1_CH, 0x5a827999u, 15)
    SHA1_FIVE(SHA1_PARITY, 0x6ed9eba1u, 20)
    SHA1_FIVE(SHA1_PARITY, 0x6ed9eba1u, 25)
    SHA1_FIVE(SHA1_PARITY, 0x6ed9eba1u, 30)
    SHA1_FIVE(SHA1_PARITY, 0x6ed9eba1u, 35)
    SHA1_FIVE(SHA1_MAJ, 0x8f1bbcdcu, 40)
    SHA1_FIVE(SHA1_MAJ, 0x8f1bbcdcu, 45)
    SHA1_FIVE(SHA1_MAJ, 0x8f1bbcdcu, 50)
    SHA1_FIVE(SHA1_MAJ, 0x8f1bbcdcu, 55)
    SHA1_FIVE(SHA1_PARITY, 0xca62c1d6u, 60)
    SHA1_FIVE(SHA1_PARITY, 0xca62c1d6u, 65)
    SHA1_FIVE(SHA1_PARITY, 0xca62c1d6u, 70)
    SHA1_FIVE(SHA1_PARITY, 0xca62c1d6u, 75)
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>

/* One group of four rounds with the SHA extensions: ``f`` picks the round function. */
#define SHA1_NI_ROUNDS(f) abcd = _mm_sha1rnds4_epu32(abcd, e, f)

/* The same block with the x86 SHA extensions (Intel's SHA-NI: sha1rnds4 does four rounds,
 * sha1nexte adds the next E, sha1msg1/sha1msg2 extend the message four words at a time). */
__attribute__((target("sha,ssse3,sse4.1"))) static void sha1_compress_ni(uint32_t h[5],
                                                                        const unsigned char *p)
{
    const __m128i swap = _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL);
    __m128i start = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0x1B); /* A high */
    __m128i start_e = _mm_set_epi32((int)h[4], 0, 0, 0), abcd = start, e = start_e, before;
    __m128i w[4];
    for (int i = 0; i < 4; i++)
        w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), swap);
    before = abcd;
    e = _mm_add_epi32(e, w[0]);
    SHA1_NI_ROUNDS(0);
    for (int g = 1; g < 20; g++) { /* rounds 4g .. 4g+3 */
        if (g >= 4)                /* words 4g .. 4g+3 from the sixteen before */
            w[g & 3] = _mm_sha1msg2_epu32(
                _mm_xor_si128(_mm_sha1msg1_epu32(w[g & 3], w[(g + 1) & 3]), w[(g + 2) & 3]),
                w[(g + 3) & 3]);
        e = _mm_sha1nexte_epu32(before, w[g & 3]);
        before = abcd;
        switch (g / 5) { /* the round function must be a constant */
        case 0: SHA1_NI_ROUNDS(0); break;
        case 1: SHA1_NI_ROUNDS(1); break;
        case 2: SHA1_NI_ROUNDS(2); break;
        default: SHA1_NI_ROUNDS(3); break;
        }
    }
    e = _mm_sha1nexte_epu32(before, start_e);
    abcd = _mm_shuffle_epi32(_mm_add_epi32(abcd, start), 0x1B);
    _mm_storeu_si128((__m128i *)h, abcd);
    h[4] = (uint32_t)_mm_extract_epi32(e, 3);
}

/* Whether this processor has the SHA extensions (and the SSSE3 and SSE4.1 they come with). */
static int has_sha_ni(void)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1))
        return 0;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29));
}
#endif

/* The block function this processor runs best, chosen when the module loads. */
static void (*sha1_block)(uint32_t h[5], const unsigned char *p) = sha1_compress;

static void sha1_choose(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (has_sha_ni())
        sha1_block = sha1_compress_ni;
#endif
}

static void sha1_init(Sha1 *s)
{
    static const uint32_t start[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u,
                                      0xc3d2e1f0u};
    memcpy(s->h, start, sizeof start);
    s->length = 0;
    s->used = 0;
}

static void sha1_update(Sha1 *s, const unsigned char *p, size_t n)
{
    s->length += n;
    while (n) {
        size_t take = 64 - s->used;
        if (take > n)
            take = n;
        memcpy(s->block + s->used, p, take);
        s->used += take;
        p += take;
        n -= take;
        if (s->used == 64) {
            sha1_block(s->h, s->block);
            s->used = 0;
        }
    }
}

static void sha1_final(Sha1 *s, unsigned char out[20])
{
    uint64_t bits = s->length * 8;
    s->block[s->used++] = 0x80;
    if (s->used > 56) {
        memset(s->block + s->used, 0, 64 - s->used);
        sha1_block(s->h, s->block);
        s->used = 0;
    }
    memset(s->block + s->used, 0, 56 - s->used);
    for (int i = 0; i < 8; i++)
        s->block[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
    sha1_block(s->h, s->block);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(s->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)s->h[i];
    }
}

/* ---- growing byte buffers ------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t used, size;
} Text;

static int text_reserve(Text *t, size_t n)
{
    if (t->used + n <= t->size)
        return 0;
    size_t size = (t->used + n) * 2 + 256;
    char *grown = PyMem_Realloc(t->data, size);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    t->data = grown;
    t->size = size;
    return 0;
}

static int text_put(Text *t, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (text_reserve(t, n) < 0)
        return -1;
    memcpy(t->data + t->used, p, n);
    t->used += n;
    return 0;
}

static int text_char(Text *t, char c) { return text_put(t, &c, 1); }

static int text_number(Text *t, long long n)
{
    char digits[24];
    int at = 24;
    unsigned long long u = n < 0 ? 0ull - (unsigned long long)n : (unsigned long long)n;
    do {
        digits[--at] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (n < 0)
        digits[--at] = '-';
    return text_put(t, digits + at, (size_t)(24 - at));
}

static int text_span(Text *t, long long first, long long last)
{
    if (text_number(t, first) < 0)
        return -1;
    if (first == last)
        return 0;
    return text_char(t, '_') < 0 ? -1 : text_number(t, last);
}

/* UTF-8 of a str (cached in the str by Python), or NULL with an exception set. */
static const char *utf8(PyObject *text, Py_ssize_t *size)
{
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "expected str");
        return NULL;
    }
    return PyUnicode_AsUTF8AndSize(text, size);
}

static int as_position(PyObject *value, long long *out)
{
    *out = PyLong_AsLongLong(value);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

/* ---- VariantIds: IdFactory.variant's state and work ------------------------------------ */

typedef struct {
    char *name;
    size_t size;
    long count;
} Seen;

typedef struct {
    PyObject_HEAD
    Sha1 base;       /* the hash of everything before the variant's name */
    PyObject *chrom; /* the locus of the last call (NULL before the first) */
    long long pos;
    Seen *seen; /* names at that locus and how often each came */
    size_t n_seen, cap_seen;
    Text name;
} VariantIds;

static void ids_forget(VariantIds *self)
{
    for (size_t i = 0; i < self->n_seen; i++)
        PyMem_Free(self->seen[i].name);
    self->n_seen = 0;
}

static int ids_init(VariantIds *self, PyObject *args, PyObject *kwds)
{
    Py_buffer prefix;
    static char *names[] = {"prefix", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*", names, &prefix))
        return -1;
    sha1_init(&self->base);
    sha1_update(&self->base, prefix.buf, (size_t)prefix.len);
    PyBuffer_Release(&prefix);
    Py_CLEAR(self->chrom);
    ids_forget(self);
    return 0;
}

static void ids_dealloc(VariantIds *self)
{
    ids_forget(self);
    PyMem_Free(self->seen);
    PyMem_Free(self->name.data);
    Py_XDECREF(self->chrom);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* How many times this name has now come at this locus (a new locus forgets the last). */
static long ids_count(VariantIds *self, PyObject *chrom, long long pos)
{
    int same = self->chrom != NULL && pos == self->pos &&
               (chrom == self->chrom || PyUnicode_Compare(chrom, self->chrom) == 0);
    if (PyErr_Occurred())
        return -1;
    if (!same) {
        Py_INCREF(chrom);
        Py_XSETREF(self->chrom, chrom);
        self->pos = pos;
        ids_forget(self);
    }
    const char *name = self->name.data;
    size_t size = self->name.used;
    for (size_t i = 0; i < self->n_seen; i++)
        if (self->seen[i].size == size && memcmp(self->seen[i].name, name, size) == 0)
            return ++self->seen[i].count;
    if (self->n_seen == self->cap_seen) {
        size_t cap = self->cap_seen * 2 + 4;
        Seen *grown = PyMem_Realloc(self->seen, cap * sizeof(Seen));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->seen = grown;
        self->cap_seen = cap;
    }
    char *copy = PyMem_Malloc(size ? size : 1);
    if (copy == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(copy, name, size);
    self->seen[self->n_seen++] = (Seen){copy, size, 1};
    return 1;
}

static const char HEX[] = "0123456789abcdef";

/* The UUIDv5 of a name hashed after ``base``: 36 characters of text and 16 bytes. */
static void uuid_of(const Sha1 *base, const Text *name, char text[36], unsigned char raw[16])
{
    Sha1 h = *base;
    unsigned char digest[20];
    sha1_update(&h, (const unsigned char *)name->data, name->used);
    sha1_final(&h, digest);
    memcpy(raw, digest, 16);
    raw[6] = (unsigned char)(0x50 | (raw[6] & 0x0f));
    raw[8] = (unsigned char)(0x80 | (raw[8] & 0x3f));
    int at = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            text[at++] = '-';
        text[at++] = HEX[raw[i] >> 4];
        text[at++] = HEX[raw[i] & 15];
    }
}

/* The id of a call: the UUIDv5 of its name chrom|pos|ref|alt (|end for structural
 * variants, |n for the n-th identical call at one locus; see IdFactory), as 36 characters
 * of text and as 16 bytes. */
static int ids_make(VariantIds *self, PyObject *chrom, long long pos, PyObject *ref,
                    PyObject *alt, PyObject *end, char text[36], unsigned char raw[16])
{
    Py_ssize_t cl, rl, al;
    const char *c = utf8(chrom, &cl), *r = c ? utf8(ref, &rl) : NULL;
    const char *a = r ? utf8(alt, &al) : NULL;
    long long last = 0;
    if (a == NULL || (end != Py_None && as_position(end, &last) < 0))
        return -1;
    Text *t = &self->name;
    t->used = 0;
    if (text_put(t, c, (size_t)cl) < 0 || text_char(t, '|') < 0 || text_number(t, pos) < 0 ||
        text_char(t, '|') < 0 || text_put(t, r, (size_t)rl) < 0 || text_char(t, '|') < 0 ||
        text_put(t, a, (size_t)al) < 0)
        return -1;
    if (end != Py_None && (text_char(t, '|') < 0 || text_number(t, last) < 0))
        return -1;
    long repeat = ids_count(self, chrom, pos);
    if (repeat < 0)
        return -1;
    if (repeat > 1 && (text_char(t, '|') < 0 || text_number(t, repeat) < 0))
        return -1;
    uuid_of(&self->base, t, text, raw);
    return 0;
}

static PyObject *ids_variant(VariantIds *self, PyObject *const *args, Py_ssize_t nargs)
{
    long long pos;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "variant(chrom, pos, ref, alt, end)");
        return NULL;
    }
    if (as_position(args[1], &pos) < 0)
        return NULL;
    char text[36];
    unsigned char raw[16];
    if (ids_make(self, args[0], pos, args[2], args[3], args[4], text, raw) < 0)
        return NULL;
    return Py_BuildValue("(s#y#)", text, (Py_ssize_t)36, raw, (Py_ssize_t)16);
}

static PyMethodDef ids_methods[] = {
    {"variant", (PyCFunction)(void (*)(void))ids_variant, METH_FASTCALL,
     "variant(chrom, pos, ref, alt, end) -> (id text, 16 id bytes); see IdFactory.variant"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject VariantIdsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "adapter._native.VariantIds",
    .tp_basicsize = sizeof(VariantIds),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "VariantIds(prefix): UUIDv5 ids of variant names hashed after ``prefix``",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)ids_init,
    .tp_dealloc = (destructor)ids_dealloc,
    .tp_methods = ids_methods,
};

/* ---- describe: SPDI, g.HGVS and change type of a sequence allele ----------------------- */

enum { NO_CHANGE, SNV, MNV, DELETION, INSERTION, DELINS, DUPLICATION, INVERSION, CHANGES };
static const char *const CHANGE_NAMES[CHANGES] = {
    "", "SNV", "MNV", "deletion", "insertion", "delins", "duplication", "inversion",
};

static char base_of(char c)
{
    switch (c) {
    case 'A': case 'a': return 'A';
    case 'C': case 'c': return 'C';
    case 'G': case 'g': return 'G';
    case 'T': case 't': return 'T';
    default: return 0;
    }
}

static char complement(char c)
{
    switch (c) {
    case 'A': return 'T';
    case 'C': return 'G';
    case 'G': return 'C';
    case 'T': return 'A';
    default: return 'N';
    }
}

/* Upper-cased copy of an allele to the end of ``out``; 0 unless it is all of ACGTN. */
static int sequence(const char *s, Py_ssize_t n, Text *out)
{
    if (n == 0 || text_reserve(out, (size_t)n) < 0)
        return 0;
    char *to = out->data + out->used;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
        if (c != 'A' && c != 'C' && c != 'G' && c != 'T' && c != 'N')
            return 0;
        to[i] = c;
    }
    out->used += (size_t)n;
    return 1;
}

/* The HGVS change after "g." onto ``t`` (nothing for an unnamed insertion); its type. */
static int hgvs_change(Text *t, const char *ref, Py_ssize_t prefix, long long first,
                       const char *del, Py_ssize_t dl, const char *ins, Py_ssize_t il)
{
    long long last = first + dl - 1;
    if (il == 0)
        return text_span(t, first, last) < 0 || text_put(t, "del", 3) < 0 ? -1 : DELETION;
    if (dl == 0) {
        if (il <= prefix && memcmp(ref + prefix - il, ins, (size_t)il) == 0)
            return text_span(t, first - il, first - 1) < 0 || text_put(t, "dup", 3) < 0
                       ? -1
                       : DUPLICATION;
        if (first < 2)
            return INSERTION;
        return text_span(t, first - 1, first) < 0 || text_put(t, "ins", 3) < 0 ||
                       text_put(t, ins, (size_t)il) < 0
                   ? -1
                   : INSERTION;
    }
    if (dl == il) {
        int inverted = 1;
        for (Py_ssize_t i = 0; i < dl && inverted; i++)
            inverted = ins[i] == complement(del[dl - 1 - i]);
        if (inverted)
            return text_span(t, first, last) < 0 || text_put(t, "inv", 3) < 0 ? -1 : INVERSION;
    }
    if (text_span(t, first, last) < 0 || text_put(t, "delins", 6) < 0 ||
        text_put(t, ins, (size_t)il) < 0)
        return -1;
    return dl == il ? MNV : DELINS;
}

/* What describe finds of an allele; the text lives in the buffers it was given. */
typedef struct {
    int change;           /* NO_CHANGE: not a sequence change */
    long long start, end; /* 1-based, inclusive, the REF as written */
    int has_hgvs;         /* 0 for an insertion before the first base */
} Notation;

/* Describe an allele: SPDI into ``spdi``, g.HGVS into ``hgvs`` (both emptied first),
 * ``scratch`` for the upper-cased alleles. -1 on error. */
static int describe_allele(const char *acc, size_t accl, long long pos, PyObject *ref_obj,
                           PyObject *alt_obj, Text *spdi, Text *hgvs, Text *scratch,
                           Notation *out)
{
    out->change = NO_CHANGE;
    spdi->used = hgvs->used = scratch->used = 0;
    if (!PyUnicode_IS_ASCII(ref_obj) || !PyUnicode_IS_ASCII(alt_obj))
        return 0;
    const char *ref = PyUnicode_DATA(ref_obj), *alt = PyUnicode_DATA(alt_obj);
    Py_ssize_t rl = PyUnicode_GET_LENGTH(ref_obj), al = PyUnicode_GET_LENGTH(alt_obj);
    if (text_put(spdi, acc, accl) < 0 || text_char(spdi, ':') < 0 ||
        text_put(hgvs, acc, accl) < 0 || text_put(hgvs, ":g.", 3) < 0)
        return -1;
    if (rl == 1 && al == 1) {
        char base = base_of(ref[0]), new = base_of(alt[0]);
        if (!base || !new || base == new)
            return 0;
        char change[3] = {base, '>', new};
        if (text_number(spdi, pos - 1) < 0 || text_char(spdi, ':') < 0 ||
            text_char(spdi, base) < 0 || text_char(spdi, ':') < 0 || text_char(spdi, new) < 0 ||
            text_number(hgvs, pos) < 0 || text_put(hgvs, change, 3) < 0)
            return -1;
        *out = (Notation){SNV, pos, pos, 1};
        return 0;
    }
    if (!sequence(ref, rl, scratch) || !sequence(alt, al, scratch))
        return PyErr_Occurred() ? -1 : 0;
    const char *R = scratch->data, *A = scratch->data + rl;
    if (rl == al && memcmp(R, A, (size_t)rl) == 0)
        return 0;
    Py_ssize_t limit = rl < al ? rl : al, prefix = 0, suffix = 0;
    while (prefix < limit && R[prefix] == A[prefix])
        prefix++;
    Py_ssize_t dl = rl - prefix, il = al - prefix;
    limit = dl < il ? dl : il;
    while (suffix < limit && R[rl - 1 - suffix] == A[al - 1 - suffix])
        suffix++;
    dl -= suffix;
    il -= suffix;
    long long first = pos + prefix;
    size_t bare = hgvs->used;
    int change = hgvs_change(hgvs, R, prefix, first, R + prefix, dl, A + prefix, il);
    if (change < 0 || text_number(spdi, first - 1) < 0 || text_char(spdi, ':') < 0 ||
        text_put(spdi, R + prefix, (size_t)dl) < 0 || text_char(spdi, ':') < 0 ||
        text_put(spdi, A + prefix, (size_t)il) < 0)
        return -1;
    *out = (Notation){change, pos, pos + rl - 1, hgvs->used > bare};
    return 0;
}

static PyObject *text_str(const Text *t)
{
    return PyUnicode_DecodeUTF8(t->data ? t->data : "", (Py_ssize_t)t->used, NULL);
}

static PyObject *native_describe(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    long long pos;
    Py_ssize_t accl;
    if (nargs != 4 || !PyUnicode_Check(args[2]) || !PyUnicode_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "describe(accession, pos, ref, alt) of str and int");
        return NULL;
    }
    const char *acc = utf8(args[0], &accl);
    if (acc == NULL || as_position(args[1], &pos) < 0)
        return NULL;
    Text spdi = {NULL, 0, 0}, hgvs = {NULL, 0, 0}, scratch = {NULL, 0, 0};
    Notation n;
    PyObject *result = NULL;
    if (describe_allele(acc, (size_t)accl, pos, args[2], args[3], &spdi, &hgvs, &scratch, &n) ==
        0) {
        if (n.change == NO_CHANGE)
            result = Py_NewRef(Py_None);
        else
            result = Py_BuildValue("(sLLNN)", CHANGE_NAMES[n.change], n.start, n.end,
                                   text_str(&spdi), n.has_hgvs ? text_str(&hgvs) : Py_NewRef(Py_None));
    }
    PyMem_Free(spdi.data);
    PyMem_Free(hgvs.data);
    PyMem_Free(scratch.data);
    return result;
}

/* ---- Lane: the fast lane of _Encoder -------------------------------------------------- */

/* the molecular-consequences encoder (below), which the lane calls for annotated calls */
typedef struct Consequences Consequences;
struct Consequences {
    PyObject_HEAD
    Sha1 base;            /* the hash of everything before a consequence's name */
    PyObject *references; /* what the writer puts before an id in a reference */
    PyObject *ensembl, *refseq; /* the transcripts' systems */
    PyObject *make;       /* (system, coding, protein, terms, count) -> (pieces, before) */
    PyObject *dumps;      /* orjson.dumps, for text that needs escaping */
    PyObject *templates;  /* shape -> (pieces, before) */
    Text out, ids, name, coding, finding;
};
static PyTypeObject ConsequencesType;
static int consequences_encode(Consequences *self, const char *rid, PyObject *items);

/* A proven lane key and its template. */
typedef struct {
    PyObject *chromosome, *zygosity; /* compared by identity: the reader shares them */
    int change;
    Py_ssize_t count;
    int has_depth;
    long annotated;           /* the kinds of the annotation's components; 0: none */
    PyObject *shape, *pieces; /* pieces: bytes between the holes */
    Py_ssize_t before;        /* id holes before the values */
} Entry;

typedef struct {
    PyObject_HEAD
    VariantIds *ids;
    PyObject *fallback; /* the Python encoder, for calls off the lane */
    PyObject *inspect;  /* shown each call's description first, or None */
    PyObject *dumps;    /* orjson.dumps, for what is not plain */
    PyObject *accessions; /* chromosome -> accession */
    PyObject *floats;     /* float -> its JSON (allele frequencies repeat) */
    PyObject *changes[CHANGES]; /* ChangeType members */
    PyObject *consequences;     /* the Consequences of annotated calls; None: decline them */
    Entry *entries;
    size_t n_entries, cap_entries;
    Text out, spdi, hgvs, scratch, coding;
} Lane;

static PyObject *STR_structural, *STR_record_id, *STR_filters, *STR_chromosome, *STR_pos,
    *STR_ref, *STR_alt, *STR_chrom, *STR_zygosity, *STR_allele_frequency, *STR_allele_depth,
    *STR_annotation, *STR_clinvar, *STR_phased, *STR_PASS, *STR_primary, *STR_others,
    *STR_hgnc_id, *STR_gene_symbol, *STR_transcript, *STR_hgvs_c, *STR_hgvs_p,
    *STR_consequences, *STR_population_af;

enum { POPULATION = 37 }; /* what a population frequency adds to an annotation code */

enum { FLOATS_KEPT = 4096 };

static int lane_init(Lane *self, PyObject *args, PyObject *kwds)
{
    PyObject *ids, *changes, *dumps, *fallback, *inspect, *consequences = Py_None;
    static char *names[] = {"ids",     "changes",      "dumps", "fallback",
                            "inspect", "consequences", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!OOO|O", names, &VariantIdsType, &ids,
                                     &PyDict_Type, &changes, &dumps, &fallback, &inspect,
                                     &consequences))
        return -1;
    if (consequences != Py_None && !PyObject_TypeCheck(consequences, &ConsequencesType)) {
        PyErr_SetString(PyExc_TypeError, "consequences must be a Consequences or None");
        return -1;
    }
    Py_XSETREF(self->consequences, Py_NewRef(consequences));
    for (int c = SNV; c < CHANGES; c++) {
        PyObject *member = PyDict_GetItemString(changes, CHANGE_NAMES[c]);
        if (member == NULL) {
            PyErr_Format(PyExc_KeyError, "changes lacks %s", CHANGE_NAMES[c]);
            return -1;
        }
        Py_XSETREF(self->changes[c], Py_NewRef(member));
    }
    Py_XSETREF(self->ids, (VariantIds *)Py_NewRef(ids));
    Py_XSETREF(self->dumps, Py_NewRef(dumps));
    Py_XSETREF(self->fallback, Py_NewRef(fallback));
    Py_XSETREF(self->inspect, Py_NewRef(inspect));
    Py_XSETREF(self->accessions, PyDict_New());
    Py_XSETREF(self->floats, PyDict_New());
    return self->accessions && self->floats ? 0 : -1;
}

/* The fallback encoder teaches the lane, so they hold each other: the lane takes part in
 * garbage collection. */
static int lane_traverse(Lane *self, visitproc visit, void *arg)
{
    for (size_t i = 0; i < self->n_entries; i++) {
        Py_VISIT(self->entries[i].chromosome);
        Py_VISIT(self->entries[i].zygosity);
        Py_VISIT(self->entries[i].shape);
        Py_VISIT(self->entries[i].pieces);
    }
    for (int c = 0; c < CHANGES; c++)
        Py_VISIT(self->changes[c]);
    Py_VISIT(self->ids);
    Py_VISIT(self->fallback);
    Py_VISIT(self->inspect);
    Py_VISIT(self->dumps);
    Py_VISIT(self->accessions);
    Py_VISIT(self->floats);
    Py_VISIT(self->consequences);
    return 0;
}

static int lane_clear(Lane *self)
{
    for (size_t i = 0; i < self->n_entries; i++) {
        Py_CLEAR(self->entries[i].chromosome);
        Py_CLEAR(self->entries[i].zygosity);
        Py_CLEAR(self->entries[i].shape);
        Py_CLEAR(self->entries[i].pieces);
    }
    self->n_entries = 0;
    for (int c = 0; c < CHANGES; c++)
        Py_CLEAR(self->changes[c]);
    Py_CLEAR(self->ids);
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->inspect);
    Py_CLEAR(self->dumps);
    Py_CLEAR(self->accessions);
    Py_CLEAR(self->floats);
    Py_CLEAR(self->consequences);
    return 0;
}

static void lane_dealloc(Lane *self)
{
    PyObject_GC_UnTrack(self);
    lane_clear(self);
    PyMem_Free(self->entries);
    PyMem_Free(self->out.data);
    PyMem_Free(self->spdi.data);
    PyMem_Free(self->hgvs.data);
    PyMem_Free(self->scratch.data);
    PyMem_Free(self->coding.data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Whether the lane is whole (not torn down by the garbage collector); else an error. */
static int lane_ready(Lane *self)
{
    if (self->ids && self->fallback && self->inspect && self->dumps && self->accessions &&
        self->floats && self->changes[SNV] && self->consequences)
        return 1;
    PyErr_SetString(PyExc_RuntimeError, "the lane is not initialised");
    return 0;
}

static PyObject *lane_place(Lane *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!lane_ready(self))
        return NULL;
    if (nargs != 2 || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "place(chromosome, accession)");
        return NULL;
    }
    if (PyDict_SetItem(self->accessions, args[0], args[1]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static int change_of(Lane *self, PyObject *member)
{
    for (int c = SNV; c < CHANGES; c++)
        if (self->changes[c] == member)
            return c;
    return NO_CHANGE;
}

/* learn((chromosome, change, zygosity, count, has_depth, annotated), shape, pieces, before,
 * after) */
static PyObject *lane_learn(Lane *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (!lane_ready(self))
        return NULL;
    if (nargs != 5 || !PyTuple_Check(args[0]) || PyTuple_GET_SIZE(args[0]) != 6 ||
        !PyTuple_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "learn(key, shape, pieces, before, after)");
        return NULL;
    }
    PyObject *key = args[0];
    Py_ssize_t count = PyLong_AsSsize_t(PyTuple_GET_ITEM(key, 3));
    Py_ssize_t before = PyLong_AsSsize_t(args[3]), after = PyLong_AsSsize_t(args[4]);
    int has_depth = PyObject_IsTrue(PyTuple_GET_ITEM(key, 4));
    long annotated = PyLong_AsLong(PyTuple_GET_ITEM(key, 5));
    int change = change_of(self, PyTuple_GET_ITEM(key, 1));
    if (PyErr_Occurred() || has_depth < 0)
        return NULL;
    if (change == NO_CHANGE || PyTuple_GET_SIZE(args[2]) != before + count + after + 1) {
        PyErr_SetString(PyExc_ValueError, "learn: an unknown change, or holes and values differ");
        return NULL;
    }
    if (self->n_entries == self->cap_entries) {
        size_t cap = self->cap_entries * 2 + 8;
        Entry *grown = PyMem_Realloc(self->entries, cap * sizeof(Entry));
        if (grown == NULL)
            return PyErr_NoMemory();
        self->entries = grown;
        self->cap_entries = cap;
    }
    self->entries[self->n_entries++] = (Entry){
        Py_NewRef(PyTuple_GET_ITEM(key, 0)), Py_NewRef(PyTuple_GET_ITEM(key, 2)), change, count,
        has_depth, annotated, Py_NewRef(args[1]), Py_NewRef(args[2]), before,
    };
    Py_RETURN_NONE;
}

/* One value of a lane call. */
typedef struct {
    enum { V_NUMBER, V_TEXT, V_OBJECT } kind;
    long long number;
    const Text *text;
    PyObject *object; /* borrowed */
} Value;

/* Append a str's JSON if it needs no escaping; 0 if it does (nothing appended). */
static int put_plain(Text *t, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == '"' || s[i] == '\\' || s[i] == 0x7f ||
            (unsigned char)s[i] > 0x7f)
            return 0;
    return text_char(t, '"') < 0 || text_put(t, s, n) < 0 || text_char(t, '"') < 0 ? -1 : 1;
}

static int put_object(Lane *self, Text *t, PyObject *value)
{
    if (PyLong_CheckExact(value)) {
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (!overflow && !(n == -1 && PyErr_Occurred()))
            return text_number(t, n);
        PyErr_Clear();
    } else if (PyUnicode_CheckExact(value) && PyUnicode_IS_ASCII(value)) {
        int done = put_plain(t, PyUnicode_DATA(value), (size_t)PyUnicode_GET_LENGTH(value));
        if (done != 0)
            return done < 0 ? -1 : 0;
    }
    int is_float = PyFloat_CheckExact(value);
    PyObject *encoded = is_float ? PyDict_GetItemWithError(self->floats, value) : NULL;
    if (encoded != NULL) {
        Py_INCREF(encoded);
    } else {
        if (PyErr_Occurred())
            return -1;
        encoded = PyObject_CallOneArg(self->dumps, value);
        if (encoded == NULL || !PyBytes_Check(encoded)) {
            Py_XDECREF(encoded);
            return -1;
        }
        if (is_float) {
            if (PyDict_GET_SIZE(self->floats) >= FLOATS_KEPT)
                PyDict_Clear(self->floats);
            if (PyDict_SetItem(self->floats, value, encoded) < 0) {
                Py_DECREF(encoded);
                return -1;
            }
        }
    }
    int failed = text_put(t, PyBytes_AS_STRING(encoded), (size_t)PyBytes_GET_SIZE(encoded));
    Py_DECREF(encoded);
    return failed;
}

static int put_value(Lane *self, Text *t, const Value *v)
{
    if (v->kind == V_NUMBER)
        return text_number(t, v->number);
    if (v->kind == V_TEXT) {
        int done = put_plain(t, v->text->data, v->text->used);
        if (done != 0)
            return done < 0 ? -1 : 0;
        PyObject *s = text_str(v->text);
        int failed = s == NULL ? -1 : put_object(self, t, s);
        Py_XDECREF(s);
        return failed;
    }
    return put_object(self, t, v->object);
}

/* The encoded Observation into self->out: pieces, with the id or a value in each hole. */
static int fill(Lane *self, const Entry *e, const char rid[36], const Value *values)
{
    Py_ssize_t holes = PyTuple_GET_SIZE(e->pieces) - 1;
    Text *t = &self->out;
    t->used = 0;
    for (Py_ssize_t i = 0; i <= holes; i++) {
        PyObject *piece = PyTuple_GET_ITEM(e->pieces, i);
        if (text_put(t, PyBytes_AS_STRING(piece), (size_t)PyBytes_GET_SIZE(piece)) < 0)
            return -1;
        if (i == holes)
            break;
        Py_ssize_t v = i - e->before;
        int failed = v < 0 || v >= e->count ? text_put(t, rid, 36)
                                            : put_value(self, t, &values[v]);
        if (failed)
            return -1;
    }
    return 0;
}

static PyObject *value_object(const Value *v)
{
    if (v->kind == V_NUMBER)
        return PyLong_FromLongLong(v->number);
    if (v->kind == V_TEXT)
        return text_str(v->text);
    return Py_NewRef(v->object);
}

/* Show the inspector the call as Python would: (id, shape, values, notes). */
static int show(Lane *self, const Entry *e, const char rid[36], const Value *values)
{
    PyObject *list = PyList_New(e->count);
    if (list == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < e->count; i++) {
        PyObject *item = value_object(&values[i]);
        if (item == NULL) {
            Py_DECREF(list);
            return -1;
        }
        PyList_SET_ITEM(list, i, item);
    }
    PyObject *result = PyObject_CallFunction(self->inspect, "s#OO[]", rid, (Py_ssize_t)36,
                                             e->shape, list);
    Py_DECREF(list);
    Py_XDECREF(result);
    return result == NULL ? -1 : 0;
}

/* Whether a call's filters are () or ("PASS",). */
static int unfiltered(PyObject *filters)
{
    if (!PyTuple_Check(filters))
        return 0;
    Py_ssize_t n = PyTuple_GET_SIZE(filters);
    if (n == 0)
        return 1;
    PyObject *only = PyTuple_GET_ITEM(filters, 0);
    return n == 1 && PyUnicode_Check(only) && PyUnicode_Compare(only, STR_PASS) == 0;
}

/* Attributes of the call the lane reads, as new references (NULL where unread). */
typedef struct {
    PyObject *chromosome, *pos, *ref, *alt, *chrom, *zygosity, *af, *depth;
    PyObject *primary, *others, *population; /* the annotation's, when it has one */
} Call;

static void call_release(Call *c)
{
    Py_XDECREF(c->chromosome);
    Py_XDECREF(c->pos);
    Py_XDECREF(c->ref);
    Py_XDECREF(c->alt);
    Py_XDECREF(c->chrom);
    Py_XDECREF(c->zygosity);
    Py_XDECREF(c->af);
    Py_XDECREF(c->depth);
    Py_XDECREF(c->primary);
    Py_XDECREF(c->others);
    Py_XDECREF(c->population);
}

/* 1 if the call may take the lane (see _Encoder._lane), with its attributes read; an
 * annotated call only if ``annotated`` (the lane makes its consequences). */
static int call_read(PyObject *obj, Call *c, int annotated)
{
    PyObject *structural = PyObject_GetAttr(obj, STR_structural);
    PyObject *record = structural ? PyObject_GetAttr(obj, STR_record_id) : NULL;
    PyObject *filters = record ? PyObject_GetAttr(obj, STR_filters) : NULL;
    PyObject *annotation = filters ? PyObject_GetAttr(obj, STR_annotation) : NULL;
    PyObject *clinvar = annotation ? PyObject_GetAttr(obj, STR_clinvar) : NULL;
    PyObject *phased = clinvar ? PyObject_GetAttr(obj, STR_phased) : NULL;
    int open = phased && structural == Py_None && (annotation == Py_None || annotated) &&
               clinvar == Py_None && phased == Py_False && unfiltered(filters) &&
               (record == Py_None || PyObject_IsTrue(record) == 0);
    if (open && annotation != Py_None) {
        c->primary = PyObject_GetAttr(annotation, STR_primary);
        c->others = c->primary ? PyObject_GetAttr(annotation, STR_others) : NULL;
        c->population = c->others ? PyObject_GetAttr(annotation, STR_population_af) : NULL;
        open = c->population != NULL && c->primary != Py_None && PyTuple_Check(c->others);
    }
    Py_XDECREF(structural);
    Py_XDECREF(record);
    Py_XDECREF(filters);
    Py_XDECREF(annotation);
    Py_XDECREF(clinvar);
    Py_XDECREF(phased);
    if (!open)
        return PyErr_Occurred() ? -1 : 0;
    c->chromosome = PyObject_GetAttr(obj, STR_chromosome);
    c->pos = PyObject_GetAttr(obj, STR_pos);
    c->ref = PyObject_GetAttr(obj, STR_ref);
    c->alt = PyObject_GetAttr(obj, STR_alt);
    c->chrom = PyObject_GetAttr(obj, STR_chrom);
    c->zygosity = PyObject_GetAttr(obj, STR_zygosity);
    c->af = PyObject_GetAttr(obj, STR_allele_frequency);
    c->depth = PyObject_GetAttr(obj, STR_allele_depth);
    if (!c->chromosome || !c->pos || !c->ref || !c->alt || !c->chrom || !c->zygosity ||
        !c->af || !c->depth)
        return -1;
    return PyUnicode_Check(c->ref) && PyUnicode_Check(c->alt) && PyUnicode_Check(c->chrom);
}

static const Entry *find(Lane *self, const Call *c, int change, Py_ssize_t count, int has_depth,
                         long annotated)
{
    for (size_t i = 0; i < self->n_entries; i++) {
        const Entry *e = &self->entries[i];
        if (e->change == change && e->count == count && e->has_depth == has_depth &&
            e->annotated == annotated &&
            e->zygosity == c->zygosity &&
            (e->chromosome == c->chromosome ||
             (PyUnicode_Check(c->chromosome) && PyUnicode_Check(e->chromosome) &&
              PyUnicode_Compare(e->chromosome, c->chromosome) == 0)))
            return e;
    }
    return NULL;
}

/* The values the primary transcript gives a Variant (as _Encoder._lane lists them), as new
 * references; NULL where it gives none. */
typedef struct {
    PyObject *hgnc, *symbol, *transcript, *protein;
    int coding; /* the c.HGVS, in self->coding */
} Primary;

static void primary_release(Primary *p)
{
    Py_XDECREF(p->hgnc);
    Py_XDECREF(p->symbol);
    Py_XDECREF(p->transcript);
    Py_XDECREF(p->protein);
}

/* A text attribute: a new reference when it is non-empty text, else NULL (and 0 or -1). */
static int text_attribute(PyObject *obj, PyObject *name, PyObject **out)
{
    PyObject *value = PyObject_GetAttr(obj, name);
    *out = NULL;
    if (value == NULL)
        return -1;
    if (PyUnicode_Check(value) && PyUnicode_GET_LENGTH(value) > 0) {
        *out = value;
        return 0;
    }
    Py_DECREF(value);
    return 0;
}

/* Read the primary transcript: its values into ``p``, the code of its components' kinds
 * (see _annotation_code in adapter/fhir/variant.py), or -1. */
static long primary_read(Lane *self, PyObject *primary, Primary *p)
{
    PyObject *c = NULL, *protein = NULL;
    if (text_attribute(primary, STR_hgnc_id, &p->hgnc) < 0 ||
        text_attribute(primary, STR_gene_symbol, &p->symbol) < 0 ||
        text_attribute(primary, STR_transcript, &p->transcript) < 0 ||
        text_attribute(primary, STR_hgvs_c, &c) < 0 ||
        text_attribute(primary, STR_hgvs_p, &protein) < 0) {
        Py_XDECREF(c);
        return -1;
    }
    long gene = p->symbol == NULL ? 0 : p->hgnc != NULL ? 1 : 2;
    if (gene != 1)
        Py_CLEAR(p->hgnc);
    long transcript = 0;
    Py_ssize_t txl = 0, cl = 0, pl = 0;
    const char *tx = p->transcript ? utf8(p->transcript, &txl) : "";
    const char *cs = c ? utf8(c, &cl) : "";
    const char *ps = protein ? utf8(protein, &pl) : "";
    long result = -1;
    if (tx == NULL || cs == NULL || ps == NULL)
        goto done;
    if (p->transcript != NULL)
        transcript = txl >= 3 && memcmp(tx, "ENS", 3) == 0 ? 1 : 2;
    Text *coding = &self->coding;
    coding->used = 0;
    p->coding = c != NULL;
    if (p->coding && memchr(cs, ':', (size_t)cl) == NULL && p->transcript != NULL &&
        (text_put(coding, tx, (size_t)txl) < 0 || text_char(coding, ':') < 0))
        goto done;
    if (p->coding && text_put(coding, cs, (size_t)cl) < 0)
        goto done;
    if (protein != NULL && memchr(ps, ':', (size_t)pl) != NULL)
        p->protein = Py_NewRef(protein);
    result = 1 + gene + 3 * transcript + 9 * (long)p->coding + 18 * (long)(p->protein != NULL);
done:
    Py_XDECREF(c);
    Py_XDECREF(protein);
    return result;
}

/* The molecular-consequences of an annotated call, after its Variant: their encodings in
 * the Consequences' buffers. */
static int made_consequences(Lane *self, const char rid[36], const Call *c)
{
    Py_ssize_t n = PyTuple_GET_SIZE(c->others);
    PyObject *items = PyTuple_New(n + 1);
    if (items == NULL)
        return -1;
    PyTuple_SET_ITEM(items, 0, Py_NewRef(c->primary));
    for (Py_ssize_t i = 0; i < n; i++)
        PyTuple_SET_ITEM(items, i + 1, Py_NewRef(PyTuple_GET_ITEM(c->others, i)));
    int failed = consequences_encode((Consequences *)self->consequences, rid, items);
    Py_DECREF(items);
    return failed;
}

/* The encoding of a lane call into self->out and its id; 1 done, 0 off the lane, -1 error. */
static int lane_encode(Lane *self, PyObject *obj, char rid[36], unsigned char raw[16])
{
    Call c = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    Primary primary = {NULL, NULL, NULL, NULL, 0};
    long long pos;
    Py_ssize_t accl;
    int result = call_read(obj, &c, self->consequences != Py_None);
    if (result <= 0 || as_position(c.pos, &pos) < 0)
        goto done;
    result = -1;
    PyObject *accession = PyDict_GetItemWithError(self->accessions, c.chromosome);
    if (accession == NULL) {
        result = PyErr_Occurred() ? -1 : 0;
        goto done;
    }
    const char *acc = utf8(accession, &accl);
    Notation n = {NO_CHANGE, 0, 0, 0};
    if (acc == NULL || describe_allele(acc, (size_t)accl, pos, c.ref, c.alt, &self->spdi,
                                       &self->hgvs, &self->scratch, &n) < 0)
        goto done;
    Value values[16];
    Py_ssize_t count = 0;
    long annotated = 0;
    if (c.primary != NULL) {
        annotated = primary_read(self, c.primary, &primary);
        if (annotated < 0)
            goto done;
        if (primary.hgnc != NULL)
            values[count++] = (Value){V_OBJECT, 0, NULL, primary.hgnc};
        if (primary.symbol != NULL)
            values[count++] = (Value){V_OBJECT, 0, NULL, primary.symbol};
    }
    values[count++] = (Value){V_NUMBER, n.start, NULL, NULL};
    values[count++] = (Value){V_NUMBER, n.end, NULL, NULL};
    values[count++] = (Value){V_OBJECT, 0, NULL, c.ref};
    values[count++] = (Value){V_OBJECT, 0, NULL, c.alt};
    values[count++] = (Value){V_TEXT, 0, &self->hgvs, NULL};
    values[count++] = (Value){V_TEXT, 0, &self->spdi, NULL};
    if (primary.transcript != NULL)
        values[count++] = (Value){V_OBJECT, 0, NULL, primary.transcript};
    if (primary.coding)
        values[count++] = (Value){V_TEXT, 0, &self->coding, NULL};
    if (primary.protein != NULL)
        values[count++] = (Value){V_OBJECT, 0, NULL, primary.protein};
    if (c.af != Py_None) {
        double f = PyFloat_AsDouble(c.af);
        if (f == -1.0 && PyErr_Occurred())
            goto done;
        if (isfinite(f))
            values[count++] = (Value){V_OBJECT, 0, NULL, c.af};
    }
    int has_depth = c.depth != Py_None;
    if (has_depth)
        values[count++] = (Value){V_OBJECT, 0, NULL, c.depth};
    if (c.population != NULL && c.population != Py_None) { /* see _population in variant.py */
        double f = PyFloat_AsDouble(c.population);
        if (f == -1.0 && PyErr_Occurred())
            goto done;
        if (isfinite(f)) {
            values[count++] = (Value){V_OBJECT, 0, NULL, c.population};
            annotated += POPULATION;
        }
    }
    const Entry *e = n.change == NO_CHANGE || !n.has_hgvs
                         ? NULL
                         : find(self, &c, n.change, count, has_depth, annotated);
    if (e == NULL) {
        result = 0;
        goto done;
    }
    if (ids_make(self->ids, c.chrom, pos, c.ref, c.alt, Py_None, rid, raw) < 0 ||
        (self->inspect != Py_None && show(self, e, rid, values) < 0) ||
        fill(self, e, rid, values) < 0)
        goto done;
    if (c.primary != NULL && made_consequences(self, rid, &c) < 0)
        goto done;
    result = 1;
done:
    call_release(&c);
    primary_release(&primary);
    return result;
}

/* (the Variant and its consequences, their ids) as bytes */
static PyObject *joined(Lane *self, const unsigned char raw[16], Consequences *made)
{
    size_t extra = (PyObject *)made == Py_None ? 0 : made->out.used;
    size_t ids = (PyObject *)made == Py_None ? 0 : made->ids.used;
    PyObject *data = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(self->out.used + extra));
    PyObject *id = data ? PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(16 + ids)) : NULL;
    if (id == NULL) {
        Py_XDECREF(data);
        return NULL;
    }
    memcpy(PyBytes_AS_STRING(data), self->out.data, self->out.used);
    memcpy(PyBytes_AS_STRING(id), raw, 16);
    if (extra)
        memcpy(PyBytes_AS_STRING(data) + self->out.used, made->out.data, extra);
    if (ids)
        memcpy(PyBytes_AS_STRING(id) + 16, made->ids.data, ids);
    return Py_BuildValue("(NN)", data, id);
}

/* lane(call, genes=()) -> (the encoded Observation, its 16-byte id) */
static PyObject *lane_call(Lane *self, PyObject *args, PyObject *kwds)
{
    PyObject *call, *genes = NULL;
    static char *names[] = {"call", "genes", NULL};
    if (!lane_ready(self) || !PyArg_ParseTupleAndKeywords(args, kwds, "O|O", names, &call, &genes))
        return NULL;
    if (genes == NULL || PyObject_Length(genes) == 0) {
        if (PyErr_Occurred())
            return NULL;
        char rid[36];
        unsigned char raw[16];
        Consequences *made = (Consequences *)self->consequences;
        if (self->consequences != Py_None)
            made->out.used = made->ids.used = 0;
        int found = lane_encode(self, call, rid, raw);
        if (found < 0)
            return NULL;
        if (found)
            return joined(self, raw, made);
    }
    return PyObject_Call(self->fallback, args, kwds);
}

static PyMethodDef lane_methods[] = {
    {"place", (PyCFunction)(void (*)(void))lane_place, METH_FASTCALL,
     "place(chromosome, accession): the RefSeq accession of a chromosome"},
    {"learn", (PyCFunction)(void (*)(void))lane_learn, METH_FASTCALL,
     "learn(key, shape, pieces, before, after): a lane key's proven template"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef lane_members[] = {
    {"fallback", T_OBJECT_EX, offsetof(Lane, fallback), 0, "the encoder of calls off the lane"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject LaneType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "adapter._native.Lane",
    .tp_basicsize = sizeof(Lane),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Lane(ids, changes, dumps, fallback, inspect): _Encoder's fast lane",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)lane_init,
    .tp_dealloc = (destructor)lane_dealloc,
    .tp_traverse = (traverseproc)lane_traverse,
    .tp_clear = (inquiry)lane_clear,
    .tp_free = PyObject_GC_Del,
    .tp_call = (ternaryfunc)lane_call,
    .tp_methods = lane_methods,
    .tp_members = lane_members,
};

/* ---- Consequences: the molecular-consequences of a Variant (_Encoder._consequences) ---- */

/* A piece of UTF-8 text, not owned. */
typedef struct {
    const char *s;
    size_t n;
} Span;



static int consequences_init(Consequences *self, PyObject *args, PyObject *kwds)
{
    Py_buffer prefix;
    PyObject *references, *ensembl, *refseq, *make, *dumps;
    static char *names[] = {"prefix", "references", "ensembl", "refseq", "make", "dumps", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*UUUOO", names, &prefix, &references,
                                     &ensembl, &refseq, &make, &dumps))
        return -1;
    sha1_init(&self->base);
    sha1_update(&self->base, prefix.buf, (size_t)prefix.len);
    PyBuffer_Release(&prefix);
    Py_XSETREF(self->references, Py_NewRef(references));
    Py_XSETREF(self->ensembl, Py_NewRef(ensembl));
    Py_XSETREF(self->refseq, Py_NewRef(refseq));
    Py_XSETREF(self->make, Py_NewRef(make));
    Py_XSETREF(self->dumps, Py_NewRef(dumps));
    Py_XSETREF(self->templates, PyDict_New());
    return self->templates ? 0 : -1;
}

static int consequences_traverse(Consequences *self, visitproc visit, void *arg)
{
    Py_VISIT(self->references);
    Py_VISIT(self->ensembl);
    Py_VISIT(self->refseq);
    Py_VISIT(self->make);
    Py_VISIT(self->dumps);
    Py_VISIT(self->templates);
    return 0;
}

static int consequences_clear(Consequences *self)
{
    Py_CLEAR(self->references);
    Py_CLEAR(self->ensembl);
    Py_CLEAR(self->refseq);
    Py_CLEAR(self->make);
    Py_CLEAR(self->dumps);
    Py_CLEAR(self->templates);
    return 0;
}

static void consequences_dealloc(Consequences *self)
{
    PyObject_GC_UnTrack(self);
    consequences_clear(self);
    Text *texts[] = {&self->out, &self->ids, &self->name, &self->coding, &self->finding};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        PyMem_Free(texts[i]->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Append text's JSON: as it is when plain, else as ``dumps`` escapes it. */
static int put_text(Consequences *self, Text *t, const char *s, size_t n)
{
    int done = put_plain(t, s, n);
    if (done != 0)
        return done < 0 ? -1 : 0;
    PyObject *text = PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, "strict");
    PyObject *encoded = text ? PyObject_CallOneArg(self->dumps, text) : NULL;
    Py_XDECREF(text);
    if (encoded == NULL || !PyBytes_Check(encoded)) {
        Py_XDECREF(encoded);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "dumps did not return bytes");
        return -1;
    }
    int failed = text_put(t, PyBytes_AS_STRING(encoded), (size_t)PyBytes_GET_SIZE(encoded));
    Py_DECREF(encoded);
    return failed;
}

/* The template of a shape, made by Python the first time it is met (borrowed). */
static PyObject *consequence_template(Consequences *self, PyObject *system, int coding,
                                      int protein, PyObject *terms, Py_ssize_t count)
{
    PyObject *key = PyTuple_Pack(4, system, coding ? Py_True : Py_False,
                                 protein ? Py_True : Py_False, terms);
    if (key == NULL)
        return NULL;
    PyObject *found = PyDict_GetItemWithError(self->templates, key);
    if (found == NULL && !PyErr_Occurred()) {
        PyObject *made = PyObject_CallFunction(self->make, "OOOOn", system, coding ? Py_True : Py_False,
                                               protein ? Py_True : Py_False, terms, count);
        if (made != NULL && (!PyTuple_Check(made) || PyTuple_GET_SIZE(made) != 2 ||
                             !PyTuple_Check(PyTuple_GET_ITEM(made, 0)) ||
                             !PyLong_Check(PyTuple_GET_ITEM(made, 1)))) {
            PyErr_SetString(PyExc_TypeError, "make must return (pieces, before)");
            Py_CLEAR(made);
        }
        if (made != NULL && PyDict_SetItem(self->templates, key, made) == 0)
            found = made;
        Py_XDECREF(made); /* the dict holds it */
    }
    Py_DECREF(key);
    return found;
}

/* One consequence: its encoding appended to self->out, its id to self->ids. */
static int consequence(Consequences *self, const Sha1 *named, Py_ssize_t order, PyObject *item)
{
    PyObject *tx = PyObject_GetAttr(item, STR_transcript);
    PyObject *c = tx ? PyObject_GetAttr(item, STR_hgvs_c) : NULL;
    PyObject *p = c ? PyObject_GetAttr(item, STR_hgvs_p) : NULL;
    PyObject *terms = p ? PyObject_GetAttr(item, STR_consequences) : NULL;
    int result = -1;
    Py_ssize_t txl = 0, cl = 0, pl = 0;
    const char *txs = "", *cs = NULL, *ps = NULL;
    if (terms == NULL || (tx != Py_None && (txs = utf8(tx, &txl)) == NULL) ||
        (c != Py_None && (cs = utf8(c, &cl)) == NULL) ||
        (p != Py_None && (ps = utf8(p, &pl)) == NULL))
        goto done;
    Text *coding = &self->coding; /* the c.HGVS, given the transcript's when it names none */
    coding->used = 0;
    if (cs != NULL && cl > 0) {
        if (memchr(cs, ':', (size_t)cl) == NULL && txl > 0 &&
            (text_put(coding, txs, (size_t)txl) < 0 || text_char(coding, ':') < 0))
            goto done;
        if (text_put(coding, cs, (size_t)cl) < 0)
            goto done;
    }
    int has_c = coding->used > 0 && memchr(coding->data, ':', coding->used) != NULL;
    int has_p = ps != NULL && pl > 0 && memchr(ps, ':', (size_t)pl) != NULL;
    PyObject *system = txl == 0 ? Py_None
                       : (txl >= 3 && memcmp(txs, "ENS", 3) == 0) ? self->ensembl
                                                                  : self->refseq;
    Py_ssize_t count = 1 + (txl > 0) + has_c + has_p;
    PyObject *template = consequence_template(self, system, has_c, has_p, terms, count);
    if (template == NULL)
        goto done;
    PyObject *pieces = PyTuple_GET_ITEM(template, 0);
    Py_ssize_t before = PyLong_AsSsize_t(PyTuple_GET_ITEM(template, 1));
    Py_ssize_t holes = PyTuple_GET_SIZE(pieces) - 1;
    if (before < 0 || holes < before + count) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "a template with fewer holes than values");
        goto done;
    }
    Text *name = &self->name;
    name->used = 0;
    char text[36];
    unsigned char raw[16];
    if (text_number(name, order) < 0 || text_char(name, '|') < 0 ||
        text_put(name, txs, (size_t)txl) < 0)
        goto done;
    uuid_of(named, name, text, raw);
    Span values[4];
    Py_ssize_t at = 0;
    values[at++] = (Span){self->finding.data, self->finding.used};
    if (txl > 0)
        values[at++] = (Span){txs, (size_t)txl};
    if (has_c)
        values[at++] = (Span){coding->data, coding->used};
    if (has_p)
        values[at++] = (Span){ps, (size_t)pl};
    Text *t = &self->out;
    for (Py_ssize_t i = 0; i <= holes; i++) {
        PyObject *piece = PyTuple_GET_ITEM(pieces, i);
        if (!PyBytes_Check(piece)) {
            PyErr_SetString(PyExc_TypeError, "template pieces must be bytes");
            goto done;
        }
        if (text_put(t, PyBytes_AS_STRING(piece), (size_t)PyBytes_GET_SIZE(piece)) < 0)
            goto done;
        if (i == holes)
            break;
        Py_ssize_t v = i - before;
        int failed = v < 0 || v >= count ? text_put(t, text, 36)
                                         : put_text(self, t, values[v].s, values[v].n);
        if (failed)
            goto done;
    }
    result = text_put(&self->ids, (const char *)raw, 16);
done:
    Py_XDECREF(tx);
    Py_XDECREF(c);
    Py_XDECREF(p);
    Py_XDECREF(terms);
    return result;
}

/* The consequences of the Variant ``rid`` appended to self->out, their ids to self->ids. */
static int consequences_encode(Consequences *self, const char *rid, PyObject *items)
{
    Py_ssize_t refl;
    const char *refs = utf8(self->references, &refl);
    PyObject *seq = refs ? PySequence_Fast(items, "consequences must be a sequence") : NULL;
    if (seq == NULL)
        return -1;
    int result = -1;
    self->finding.used = 0;
    if (text_put(&self->finding, refs, (size_t)refl) < 0 ||
        text_put(&self->finding, rid, 36) < 0)
        goto done;
    Sha1 named = self->base; /* the names of a Variant's consequences start "<rid>|" */
    sha1_update(&named, (const unsigned char *)rid, 36);
    sha1_update(&named, (const unsigned char *)"|", 1);
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++)
        if (consequence(self, &named, i, PySequence_Fast_GET_ITEM(seq, i)) < 0)
            goto done;
    result = 0;
done:
    Py_DECREF(seq);
    return result;
}

/* consequences(variant id, transcript consequences) -> (their encodings, their ids) */
static PyObject *consequences_call(Consequences *self, PyObject *args, PyObject *kwds)
{
    PyObject *rid_obj, *items;
    static char *names[] = {"variant", "consequences", NULL};
    if (self->templates == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Consequences is not initialised");
        return NULL;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "UO", names, &rid_obj, &items))
        return NULL;
    Py_ssize_t ridl;
    const char *rid = utf8(rid_obj, &ridl);
    if (rid == NULL)
        return NULL;
    if (ridl != 36) {
        PyErr_SetString(PyExc_ValueError, "a variant id is 36 characters of UUID text");
        return NULL;
    }
    self->out.used = self->ids.used = 0;
    if (consequences_encode(self, rid, items) < 0)
        return NULL;
    return Py_BuildValue("(y#y#)", self->out.data ? self->out.data : "",
                         (Py_ssize_t)self->out.used, self->ids.data ? self->ids.data : "",
                         (Py_ssize_t)self->ids.used);
}

static PyTypeObject ConsequencesType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "adapter._native.Consequences",
    .tp_basicsize = sizeof(Consequences),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Consequences(prefix, references, ensembl, refseq, make, dumps): a Variant's "
              "molecular-consequences, encoded",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)consequences_init,
    .tp_dealloc = (destructor)consequences_dealloc,
    .tp_traverse = (traverseproc)consequences_traverse,
    .tp_clear = (inquiry)consequences_clear,
    .tp_free = PyObject_GC_Del,
    .tp_call = (ternaryfunc)consequences_call,
};

/* ---- Entries: a CSQ/ANN value's entries as transcript consequences (AnnotationParser) --- */

enum { MODEL_FIELDS = 12, ALLELE_FIELDS = 4, TERMS_KEPT = 4096 };
/* the model fields' places in TranscriptConsequence's order (see _MODEL_FIELDS) */
enum { F_TERMS, F_IMPACT, F_SYMBOL, F_GENE, F_HGNC, F_FEATURE, F_BIOTYPE, F_HGVS_C, F_HGVS_P,
       F_CANONICAL, F_MANE, F_PICK };

typedef struct {
    PyObject_HEAD
    Py_ssize_t width, allele;          /* fields per entry; the allele's place */
    Py_ssize_t fields[MODEL_FIELDS];   /* each model field's place; width where absent */
    Py_ssize_t *af;                    /* the places of population frequencies */
    Py_ssize_t n_af;
    PyObject *make, *impacts, *unquote, *terms; /* terms: text -> tuple, kept */
    Py_ssize_t slots[MODEL_FIELDS];    /* where make's instances keep each field */
    PyObject *allele_type;             /* AlleleAnnotation, its slots in its field order: */
    Py_ssize_t allele_slots[ALLELE_FIELDS]; /* alt_index, primary, others, population_af */
    int vep;                           /* whether an indel's alleles are written VEP's way */
    int order[3], n_order;             /* the primary flags, in the order tried */
    Span *cut;                         /* one entry's fields */
    Span last[MODEL_FIELDS];           /* the last entry's text fields and their objects, */
    PyObject *kept[MODEL_FIELDS];      /* reused when the next entry repeats them */
} Entries;

/* the flags that make a transcript primary (PrimaryRule) */
enum { FLAG_MANE, FLAG_PICKED, FLAG_CANONICAL };

/* Where instances of ``type`` keep each of ``names`` (``count`` of them): its slots, as
 * __init__ sets them (a plain slotted dataclass: C fills the slots, which costs a tenth of
 * calling __init__). */
static int slots_of(PyTypeObject *type, PyObject *names, Py_ssize_t *offsets, Py_ssize_t count)
{
    if (PyTuple_GET_SIZE(names) != count) {
        PyErr_SetString(PyExc_ValueError, "Entries: one slot per model field");
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *descr = PyObject_GetAttr((PyObject *)type, PyTuple_GET_ITEM(names, i));
        if (descr == NULL)
            return -1;
        int slot = Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
                   ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX &&
                   !(((PyMemberDescrObject *)descr)->d_member->flags & READONLY);
        if (slot)
            offsets[i] = ((PyMemberDescrObject *)descr)->d_member->offset;
        Py_DECREF(descr);
        if (!slot) {
            PyErr_SetString(PyExc_TypeError, "Entries: make's fields must be writable slots");
            return -1;
        }
    }
    return 0;
}

static int entries_init(Entries *self, PyObject *args, PyObject *kwds)
{
    Py_ssize_t width, allele;
    PyObject *fields, *af, *make, *impacts, *unquote, *slots, *order, *alleles, *allele_slots;
    int vep;
    static char *names[] = {"width", "allele",  "fields", "af",      "make",         "slots",
                            "impacts", "unquote", "order", "alleles", "allele_slots", "vep",
                            NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nnO!O!O!O!O!OO!O!O!p", names, &width, &allele,
                                     &PyTuple_Type, &fields, &PyTuple_Type, &af, &PyType_Type,
                                     &make, &PyTuple_Type, &slots, &PyDict_Type, &impacts,
                                     &unquote, &PyTuple_Type, &order, &PyType_Type, &alleles,
                                     &PyTuple_Type, &allele_slots, &vep))
        return -1;
    if (slots_of((PyTypeObject *)make, slots, self->slots, MODEL_FIELDS) < 0 ||
        slots_of((PyTypeObject *)alleles, allele_slots, self->allele_slots, ALLELE_FIELDS) < 0)
        return -1;
    self->vep = vep;
    self->n_order = (int)PyTuple_GET_SIZE(order);
    for (int i = 0; i < self->n_order && i < 3; i++) {
        long flag = PyLong_AsLong(PyTuple_GET_ITEM(order, i));
        if (flag < FLAG_MANE || flag > FLAG_CANONICAL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "Entries: an unknown primary flag");
            return -1;
        }
        self->order[i] = (int)flag;
    }
    if (self->n_order > 3) {
        PyErr_SetString(PyExc_ValueError, "Entries: at most three primary flags");
        return -1;
    }
    if (width < 1 || allele < 0 || allele >= width || PyTuple_GET_SIZE(fields) != MODEL_FIELDS) {
        PyErr_SetString(PyExc_ValueError, "Entries: a bad layout");
        return -1;
    }
    self->width = width;
    self->allele = allele;
    for (Py_ssize_t i = 0; i < MODEL_FIELDS; i++) {
        Py_ssize_t at = PyLong_AsSsize_t(PyTuple_GET_ITEM(fields, i));
        if (at < 0 || at > width) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "Entries: a field outside the entry");
            return -1;
        }
        self->fields[i] = at;
    }
    PyMem_Free(self->af);
    PyMem_Free(self->cut);
    self->n_af = PyTuple_GET_SIZE(af);
    self->af = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(self->n_af + 1));
    self->cut = PyMem_Malloc(sizeof(Span) * (size_t)(width + 1));
    if (self->af == NULL || self->cut == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < self->n_af; i++) {
        self->af[i] = PyLong_AsSsize_t(PyTuple_GET_ITEM(af, i));
        if (self->af[i] < 0 || self->af[i] >= width) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "Entries: a frequency outside the entry");
            return -1;
        }
    }
    Py_XSETREF(self->make, Py_NewRef(make));
    Py_XSETREF(self->allele_type, Py_NewRef(alleles));
    Py_XSETREF(self->impacts, Py_NewRef(impacts));
    Py_XSETREF(self->unquote, Py_NewRef(unquote));
    Py_XSETREF(self->terms, PyDict_New());
    return self->terms ? 0 : -1;
}

static int entries_traverse(Entries *self, visitproc visit, void *arg)
{
    Py_VISIT(self->make);
    Py_VISIT(self->allele_type);
    Py_VISIT(self->impacts);
    Py_VISIT(self->unquote);
    Py_VISIT(self->terms);
    return 0;
}

/* Forget the last entry's fields (between records). */
static void entries_forget(Entries *self)
{
    for (int i = 0; i < MODEL_FIELDS; i++) {
        Py_CLEAR(self->kept[i]);
        self->last[i] = (Span){NULL, 0};
    }
}

static int entries_clear(Entries *self)
{
    entries_forget(self);
    Py_CLEAR(self->make);
    Py_CLEAR(self->allele_type);
    Py_CLEAR(self->impacts);
    Py_CLEAR(self->unquote);
    Py_CLEAR(self->terms);
    return 0;
}

static void entries_dealloc(Entries *self)
{
    PyObject_GC_UnTrack(self);
    entries_clear(self);
    PyMem_Free(self->af);
    PyMem_Free(self->cut);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Cut an entry at '|' into self->cut; the number of fields. */
static Py_ssize_t cut_entry(Entries *self, const char *s, size_t n)
{
    Py_ssize_t count = 0;
    const char *start = s, *end = s + n;
    for (;;) {
        const char *at = memchr(start, '|', (size_t)(end - start));
        const char *stop = at ? at : end;
        if (count <= self->width)
            self->cut[count] = (Span){start, (size_t)(stop - start)};
        count++;
        if (at == NULL)
            return count;
        start = at + 1;
    }
}

static PyObject *span_str(Span f) { return PyUnicode_DecodeUTF8(f.s, (Py_ssize_t)f.n, "strict"); }

/* A text field: None when empty. */
static PyObject *text_or_none(Span f) { return f.n ? span_str(f) : Py_NewRef(Py_None); }

static PyObject *text_field(Entries *self, Span f)
{
    (void)self;
    return text_or_none(f);
}

/* The '&'-joined consequence terms as a tuple, kept by their text. */
static PyObject *terms_of(Entries *self, Span f)
{
    PyObject *text = span_str(f);
    if (text == NULL)
        return NULL;
    PyObject *found = PyDict_GetItemWithError(self->terms, text);
    if (found != NULL || PyErr_Occurred()) {
        Py_DECREF(text);
        return found ? Py_NewRef(found) : NULL;
    }
    PyObject *amp = PyUnicode_FromString("&");
    PyObject *parts = amp ? PyUnicode_Split(text, amp, -1) : NULL;
    Py_XDECREF(amp);
    PyObject *tuple = parts ? PyList_AsTuple(parts) : NULL;
    Py_XDECREF(parts);
    if (tuple != NULL) {
        if (PyDict_GET_SIZE(self->terms) >= TERMS_KEPT)
            PyDict_Clear(self->terms);
        if (PyDict_SetItem(self->terms, text, tuple) < 0)
            Py_CLEAR(tuple);
    }
    Py_DECREF(text);
    return tuple;
}

/* An HGVS field: None when empty, VEP's URI escapes undone. */
static PyObject *hgvs_of(Entries *self, Span f)
{
    if (f.n == 0)
        return Py_NewRef(Py_None);
    PyObject *text = span_str(f);
    if (text == NULL || memchr(f.s, '%', f.n) == NULL)
        return text;
    PyObject *plain = PyObject_CallOneArg(self->unquote, text);
    Py_DECREF(text);
    return plain;
}

/* An HGNC field: "HGNC:" before a bare number (VEP writes 1097 or HGNC:1097). */
static PyObject *hgnc_of(Entries *self, Span f)
{
    (void)self;
    if (f.n == 0)
        return Py_NewRef(Py_None);
    PyObject *text = span_str(f);
    if (text == NULL)
        return NULL;
    int digits = 1; /* str.isdigit(), as Python decides it (Unicode digits too) */
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    for (Py_ssize_t i = 0; i < n && digits; i++)
        digits = Py_UNICODE_ISDIGIT(PyUnicode_READ_CHAR(text, i));
    if (!digits)
        return text;
    PyObject *id = PyUnicode_FromFormat("HGNC:%U", text);
    Py_DECREF(text);
    return id;
}

static int same(Span f, const char *text)
{
    size_t n = strlen(text);
    return f.n == n && memcmp(f.s, text, n) == 0;
}

/* A field made by ``make``, the last entry's object when the text is the same: the
 * transcripts of one gene repeat its symbol, id, biotype and often their terms. */
static PyObject *kept(Entries *self, int at, Span f, PyObject *(*make)(Entries *, Span))
{
    if (self->kept[at] != NULL && self->last[at].n == f.n && memcmp(self->last[at].s, f.s, f.n) == 0)
        return Py_NewRef(self->kept[at]);
    PyObject *made = make(self, f);
    if (made != NULL) {
        Py_XSETREF(self->kept[at], Py_NewRef(made));
        self->last[at] = f;
    }
    return made;
}

/* The Impact member an impact names, else None (as _IMPACTS.get). */
static PyObject *impact_of(Entries *self, Span f)
{
    static const char *const known[] = {"HIGH", "MODERATE", "LOW", "MODIFIER"};
    int plain = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        plain |= same(f, known[i]);
    if (!plain)
        return Py_NewRef(Py_None);
    PyObject *text = kept(self, F_IMPACT, f, text_field);
    PyObject *member = text ? PyDict_GetItemWithError(self->impacts, text) : NULL;
    Py_XDECREF(text);
    if (member == NULL)
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    return Py_NewRef(member);
}

/* The entry in self->cut as a TranscriptConsequence. */
static PyObject *consequence_of(Entries *self)
{
    Span field[MODEL_FIELDS];
    for (int i = 0; i < MODEL_FIELDS; i++)
        field[i] = self->fields[i] == self->width ? (Span){"", 0} : self->cut[self->fields[i]];
    PyObject *args[MODEL_FIELDS] = {NULL};
    args[F_IMPACT] = impact_of(self, field[F_IMPACT]);
    args[F_TERMS] = kept(self, F_TERMS, field[F_TERMS], terms_of);
    args[F_SYMBOL] = kept(self, F_SYMBOL, field[F_SYMBOL], text_field);
    args[F_GENE] = kept(self, F_GENE, field[F_GENE], text_field);
    args[F_HGNC] = kept(self, F_HGNC, field[F_HGNC], hgnc_of);
    args[F_FEATURE] = text_or_none(field[F_FEATURE]);
    args[F_BIOTYPE] = kept(self, F_BIOTYPE, field[F_BIOTYPE], text_field);
    args[F_HGVS_C] = hgvs_of(self, field[F_HGVS_C]);
    args[F_HGVS_P] = hgvs_of(self, field[F_HGVS_P]);
    args[F_CANONICAL] = Py_NewRef(same(field[F_CANONICAL], "YES") ? Py_True : Py_False);
    args[F_MANE] = kept(self, F_MANE, field[F_MANE], text_field);
    args[F_PICK] = Py_NewRef(same(field[F_PICK], "1") ? Py_True : Py_False);
    int whole = 1;
    for (int i = 0; i < MODEL_FIELDS; i++)
        whole &= args[i] != NULL;
    PyTypeObject *type = (PyTypeObject *)self->make;
    PyObject *made = whole ? type->tp_alloc(type, 0) : NULL;
    for (int i = 0; i < MODEL_FIELDS; i++) {
        if (made != NULL)
            *(PyObject **)((char *)made + self->slots[i]) = args[i]; /* the slot takes it */
        else
            Py_XDECREF(args[i]);
    }
    return made;
}

/* Whether a TranscriptConsequence bears a primary flag. */
static int flagged(Entries *self, PyObject *made, int flag)
{
    int at = flag == FLAG_MANE ? F_MANE : flag == FLAG_PICKED ? F_PICK : F_CANONICAL;
    PyObject *value = *(PyObject **)((char *)made + self->slots[at]);
    return flag == FLAG_MANE ? value != Py_None : value == Py_True;
}

/* Move a group's primary transcript to its front (as _primary chooses it; the others keep
 * their order). */
static int primary_first(Entries *self, PyObject *group)
{
    Py_ssize_t n = PyList_GET_SIZE(group);
    for (int f = 0; f < self->n_order; f++)
        for (Py_ssize_t i = 0; i < n; i++)
            if (flagged(self, PyList_GET_ITEM(group, i), self->order[f])) {
                if (i == 0)
                    return 0;
                PyObject *primary = Py_NewRef(PyList_GET_ITEM(group, i));
                int failed = PySequence_DelItem(group, i) < 0 || PyList_Insert(group, 0, primary) < 0;
                Py_DECREF(primary);
                return failed ? -1 : 0;
            }
    return 0;
}

/* The first population frequency the entry gives (Python's float() of the text before any
 * '&'), or None. */
static PyObject *frequency_of(Entries *self)
{
    for (Py_ssize_t i = 0; i < self->n_af; i++) {
        Span f = self->cut[self->af[i]];
        const char *amp = memchr(f.s, '&', f.n);
        PyObject *text = span_str((Span){f.s, amp ? (size_t)(amp - f.s) : f.n});
        PyObject *value = text ? PyFloat_FromString(text) : NULL;
        Py_XDECREF(text);
        if (value != NULL)
            return value;
        if (!PyErr_ExceptionMatches(PyExc_ValueError))
            return NULL;
        PyErr_Clear();
    }
    return Py_NewRef(Py_None);
}

/* The ALT (0-based) an entry's allele names among the keys, or -1. */
static Py_ssize_t key_of(Span allele, PyObject *keys)
{
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(keys); k++) {
        Py_ssize_t size;
        const char *key = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(keys, k), &size);
        if (key == NULL) {
            PyErr_Clear();
            return -1;
        }
        if ((size_t)size == allele.n && memcmp(key, allele.s, allele.n) == 0)
            return k;
    }
    return -1;
}

/* Read every entry of ``text`` into ``groups`` (and ``afs``), a list per key: 1 when each
 * was read, 0 (nothing read) when one is out of the ordinary, -1 on error. */
static int read_entries(Entries *self, const char *text, const char *end, PyObject *keys,
                        PyObject *groups, PyObject *afs)
{
    for (int pass = 0; pass < 2; pass++) { /* first check every entry, then read them */
        for (const char *start = text;;) {
            const char *comma = memchr(start, ',', (size_t)(end - start));
            const char *stop = comma ? comma : end;
            if (cut_entry(self, start, (size_t)(stop - start)) != self->width)
                return 0;
            Py_ssize_t index = key_of(self->cut[self->allele], keys);
            if (index < 0)
                return 0;
            if (pass == 1) {
                PyObject *made = consequence_of(self);
                if (made == NULL || PyList_Append(PyList_GET_ITEM(groups, index), made) < 0) {
                    Py_XDECREF(made);
                    return -1;
                }
                Py_DECREF(made);
                if (self->n_af && PyList_GET_ITEM(afs, index) == Py_None) {
                    PyObject *af = frequency_of(self);
                    if (af == NULL || PyList_SetItem(afs, index, af) < 0)
                        return -1;
                }
            }
            if (comma == NULL)
                break;
            start = comma + 1;
        }
    }
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(groups); k++)
        if (primary_first(self, PyList_GET_ITEM(groups, k)) < 0)
            return -1;
    return 1;
}

/* The allele strings the tool writes for the ALTs (as _vep_alleles gives them, for a VEP
 * layout), a new list; NULL without an error when Python must decide (a symbolic allele, an
 * indel whose alleles do not all share the first base). */
static PyObject *keys_of(Entries *self, PyObject *ref, PyObject *alts)
{
    Py_ssize_t n = PyList_GET_SIZE(alts), size = PyUnicode_GET_LENGTH(ref);
    int plain = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *alt = PyList_GET_ITEM(alts, i);
        if (!PyUnicode_Check(alt))
            return NULL;
        plain &= PyUnicode_GET_LENGTH(alt) == size;
    }
    if (plain || !self->vep)
        return PyList_GetSlice(alts, 0, n);
    if (size == 0)
        return NULL;
    Py_UCS4 first = PyUnicode_READ_CHAR(ref, 0);
    PyObject *keys = PyList_New(n);
    for (Py_ssize_t i = 0; keys != NULL && i < n; i++) {
        PyObject *alt = PyList_GET_ITEM(alts, i), *key;
        Py_ssize_t length = PyUnicode_GET_LENGTH(alt);
        if (length == 1 && PyUnicode_READ_CHAR(alt, 0) == '*')
            key = Py_NewRef(alt);
        else if (length == 0 || PyUnicode_READ_CHAR(alt, 0) != first)
            key = NULL; /* no shared first base, or a symbolic '<…>' allele */
        else
            key = length == 1 ? PyUnicode_FromString("-") : PyUnicode_Substring(alt, 1, length);
        if (key == NULL)
            Py_CLEAR(keys);
        else
            PyList_SET_ITEM(keys, i, key);
    }
    return keys;
}

/* An AlleleAnnotation of ALT ``index`` (0-based) from its group and frequency. */
static PyObject *allele_of(Entries *self, Py_ssize_t index, PyObject *group, PyObject *af)
{
    Py_ssize_t n = PyList_GET_SIZE(group);
    PyObject *values[ALLELE_FIELDS] = {
        PyLong_FromSsize_t(index + 1),
        Py_NewRef(n ? PyList_GET_ITEM(group, 0) : Py_None),
        n > 1 ? PyList_GetSlice(group, 1, n) : PyTuple_New(0),
        Py_NewRef(af),
    };
    if (values[2] != NULL && PyList_Check(values[2]))
        Py_SETREF(values[2], PyList_AsTuple(values[2]));
    PyTypeObject *type = (PyTypeObject *)self->allele_type;
    PyObject *made = values[0] && values[2] ? type->tp_alloc(type, 0) : NULL;
    for (int i = 0; i < ALLELE_FIELDS; i++) {
        if (made != NULL)
            *(PyObject **)((char *)made + self->allele_slots[i]) = values[i]; /* taken */
        else
            Py_XDECREF(values[i]);
    }
    return made;
}

/* The alleles of a read record: an AlleleAnnotation per ALT, in ALT order. */
static PyObject *alleles_of(Entries *self, PyObject *groups, PyObject *afs)
{
    Py_ssize_t n = PyList_GET_SIZE(groups);
    PyObject *alleles = PyTuple_New(n);
    for (Py_ssize_t i = 0; alleles != NULL && i < n; i++) {
        PyObject *made =
            allele_of(self, i, PyList_GET_ITEM(groups, i), PyList_GET_ITEM(afs, i));
        if (made == NULL)
            Py_CLEAR(alleles);
        else
            PyTuple_SET_ITEM(alleles, i, made);
    }
    return alleles;
}

/* entries(raw, ref, alts) -> an AlleleAnnotation per ALT when every entry of the CSQ/ANN
 * value ``raw`` names one of the record's ALTs; None when one is out of the ordinary (no
 * such ALT, another width, a symbolic allele): Python reads those. */
static PyObject *entries_call(Entries *self, PyObject *args, PyObject *kwds)
{
    PyObject *raw, *ref, *alts;
    static char *names[] = {"raw", "ref", "alts", NULL};
    if (self->terms == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Entries is not initialised");
        return NULL;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "UUO", names, &raw, &ref, &alts))
        return NULL;
    if (!PyList_Check(alts))
        Py_RETURN_NONE; /* cyvcf2 gives a list; any other sequence is read in Python */
    Py_ssize_t size;
    const char *text = PyUnicode_AsUTF8AndSize(raw, &size);
    if (text == NULL)
        return NULL;
    PyObject *keys = keys_of(self, ref, alts), *result = NULL;
    if (keys == NULL)
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
    Py_ssize_t n = PyList_GET_SIZE(keys);
    PyObject *groups = PyList_New(n), *afs = PyList_New(n);
    for (Py_ssize_t i = 0; groups != NULL && afs != NULL && i < n; i++) {
        PyObject *group = PyList_New(0);
        if (group == NULL)
            goto done;
        PyList_SET_ITEM(groups, i, group);
        PyList_SET_ITEM(afs, i, Py_NewRef(Py_None));
    }
    if (groups == NULL || afs == NULL)
        goto done;
    entries_forget(self);
    int read = read_entries(self, text, text + size, keys, groups, afs);
    entries_forget(self);
    if (read >= 0)
        result = read ? alleles_of(self, groups, afs) : Py_NewRef(Py_None);
done:
    Py_DECREF(keys);
    Py_XDECREF(groups);
    Py_XDECREF(afs);
    return result;
}

static PyTypeObject EntriesType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "adapter._native.Entries",
    .tp_basicsize = sizeof(Entries),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Entries(width, allele, fields, af, make, slots, impacts, unquote, order, alleles, "
              "allele_slots, vep): a CSQ/ANN value's entries read as AnnotationParser reads "
              "them, into an AlleleAnnotation per ALT, its primary transcript first",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)entries_init,
    .tp_dealloc = (destructor)entries_dealloc,
    .tp_traverse = (traverseproc)entries_traverse,
    .tp_clear = (inquiry)entries_clear,
    .tp_free = PyObject_GC_Del,
    .tp_call = (ternaryfunc)entries_call,
};

/* ---- lines: where a block's tabs, newlines, colons and commas are ---------------------- */

/* Append a position to a growing array of Py_ssize_t; 0 on memory failure. */
static int put_position(Text *t, Py_ssize_t at)
{
    return text_put(t, (const char *)&at, sizeof at) == 0;
}

/* The bytes of a Text (empty when nothing was put). */
static const char *text_bytes(const Text *t) { return t->data != NULL ? t->data : ""; }

/* The positions of each line's tabs then its newline, and the colons and commas after each
 * line's tab number ``marks_after`` (none when negative), of a block of whole lines; None
 * when a line holds another number of tabs than ``tabs`` or starts with one (the block then
 * takes the slow path). What numpy's flatnonzero would find, at memchr's speed: an
 * annotated record's INFO is a thousand bytes without one tab. */
static PyObject *native_lines(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Py_buffer view;
    Py_ssize_t tabs, marks_after;
    if (nargs != 3 || PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_TypeError, "lines(body, tabs, marks)");
    tabs = PyLong_AsSsize_t(args[1]);
    marks_after = PyLong_AsSsize_t(args[2]);
    PyObject *result = NULL;
    Text grid = {0}, colons = {0}, commas = {0};
    const char *data = view.buf, *end = data + view.len;
    if ((tabs == -1 || marks_after == -1) && PyErr_Occurred())
        goto done;
    if (tabs < 1 || view.len == 0 || end[-1] != '\n')
        goto none;
    for (const char *line = data; line < end;) {
        const char *stop = memchr(line, '\n', (size_t)(end - line)), *at = line;
        if (*line == '\t')
            goto none;
        if (text_reserve(&grid, sizeof(Py_ssize_t) * (size_t)(tabs + 1)) < 0)
            goto done;
        for (Py_ssize_t k = 0; k < tabs; k++, at++) {
            const char *near = stop - at > 16 ? at + 16 : stop; /* a short column: no call */
            while (at < near && *at != '\t')
                at++;
            if (at == near)
                at = memchr(at, '\t', (size_t)(stop - at));
            if (at == NULL)
                goto none;
            Py_ssize_t position = at - data;
            memcpy(grid.data + grid.used, &position, sizeof position);
            grid.used += sizeof position;
            if (k == marks_after)
                for (const char *c = at + 1; c < stop; c++)
                    if ((*c == ':' && !put_position(&colons, c - data)) ||
                        (*c == ',' && !put_position(&commas, c - data)))
                        goto done;
        }
        if (memchr(at, '\t', (size_t)(stop - at)) != NULL)
            goto none;
        Py_ssize_t position = stop - data;
        memcpy(grid.data + grid.used, &position, sizeof position);
        grid.used += sizeof position;
        line = stop + 1;
    }
    result = Py_BuildValue("(y#y#y#)", text_bytes(&grid), (Py_ssize_t)grid.used,
                           text_bytes(&colons), (Py_ssize_t)colons.used, text_bytes(&commas),
                           (Py_ssize_t)commas.used);
    goto done;
none:
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(grid.data);
    PyMem_Free(colons.data);
    PyMem_Free(commas.data);
    PyBuffer_Release(&view);
    return result;
}

/* sha1(data, portable) -> the digest, by the block function this processor runs or by the
 * portable one: for the tests, which hold both to hashlib's. */
static PyObject *native_sha1(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Py_buffer view;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "sha1(data, portable)");
        return NULL;
    }
    int portable = PyObject_IsTrue(args[1]);
    if (portable < 0 || PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    void (*chosen)(uint32_t h[5], const unsigned char *p) = sha1_block;
    if (portable)
        sha1_block = sha1_compress;
    Sha1 state;
    unsigned char digest[20];
    sha1_init(&state);
    sha1_update(&state, view.buf, (size_t)view.len);
    sha1_final(&state, digest);
    sha1_block = chosen;
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)digest, 20);
}

/* ---- the module ------------------------------------------------------------------------ */

static PyMethodDef module_methods[] = {
    {"describe", (PyCFunction)(void (*)(void))native_describe, METH_FASTCALL,
     "describe(accession, pos, ref, alt) -> (change, start, end, spdi, hgvs | None) | None"},
    {"sha1", (PyCFunction)(void (*)(void))native_sha1, METH_FASTCALL,
     "sha1(data, portable) -> the SHA-1 digest, by the chosen or the portable block function"},
    {"lines", (PyCFunction)(void (*)(void))native_lines, METH_FASTCALL,
     "lines(body, tabs, marks_after) -> (tabs and newlines, colons, commas) | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "adapter._native",
    .m_doc = "The per-variant hot path in C (see the source's opening comment).",
    .m_size = -1,
    .m_methods = module_methods,
};

static int intern_names(void)
{
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&STR_structural, "structural"}, {&STR_record_id, "record_id"},
        {&STR_filters, "filters"},       {&STR_chromosome, "chromosome"},
        {&STR_pos, "pos"},               {&STR_ref, "ref"},
        {&STR_alt, "alt"},               {&STR_chrom, "chrom"},
        {&STR_zygosity, "zygosity"},     {&STR_allele_frequency, "allele_frequency"},
        {&STR_allele_depth, "allele_depth"}, {&STR_annotation, "annotation"},
        {&STR_clinvar, "clinvar"},           {&STR_PASS, "PASS"},
        {&STR_phased, "phased"},             {&STR_primary, "primary"},
        {&STR_others, "others"},             {&STR_hgnc_id, "hgnc_id"},
        {&STR_gene_symbol, "gene_symbol"},   {&STR_population_af, "population_af"},
        {&STR_transcript, "transcript"},     {&STR_hgvs_c, "hgvs_c"},
        {&STR_hgvs_p, "hgvs_p"},             {&STR_consequences, "consequences"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if ((*names[i].slot = PyUnicode_InternFromString(names[i].text)) == NULL)
            return -1;
    return 0;
}

PyMODINIT_FUNC PyInit__native(void)
{
    sha1_choose();
    if (intern_names() < 0 || PyType_Ready(&VariantIdsType) < 0 || PyType_Ready(&LaneType) < 0 ||
        PyType_Ready(&ConsequencesType) < 0 || PyType_Ready(&EntriesType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&native_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "VariantIds", (PyObject *)&VariantIdsType) < 0 ||
        PyModule_AddObjectRef(module, "Lane", (PyObject *)&LaneType) < 0 ||
        PyModule_AddObjectRef(module, "Consequences", (PyObject *)&ConsequencesType) < 0 ||
        PyModule_AddObjectRef(module, "Entries", (PyObject *)&EntriesType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
