/* PII in a whole response body, counted in two passes over its bytes (digit runs, then
 * e-mails from each '@').
 *
 * The compiled half of gateway.pii.count_pii (that module's docstring has the rules; the
 * Python function find_pii is the reference, and property tests hold this scan to it).
 * Python spent about 0.5 us per candidate run here; a 10,000-record body has 20,000 of them.
 *
 * scan(body, today) -> (mobiles, resident_ids, bank_cards, emails, undecided)
 *
 * A candidate is what the regex  \d[\d \-]{8,}[\dXx]  finds, scanning left to right: inside
 * each maximal block of digits, spaces and hyphens, from its first digit to an 'X'/'x' right
 * after the block (if at least 9 bytes from that digit) or else to its last digit (if at
 * least 10 digits and separators long). A candidate of bare digits (an ID may end in X) is
 * classified here and counted, unless its neighbour bytes could make it part of an e-mail
 * address. Those, and every candidate with separators, are returned undecided as
 * (kind, start, end) for the Python side: kind 0-2 as in the counts, -1 for "has separators".
 *
 * E-mails are counted as gateway.pii's _EMAIL_BYTES pattern finds them, left to right without
 * overlaps: an '@' after a local-part byte, then dot-separated labels of [A-Za-z0-9-], the
 * match ending after the last label (not the first) that is 2-24 letters.
 *
 * today is the current date as 8 ASCII digits, YYYYMMDD: an ID's birth date may not be later.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

enum { MOBILE = 0, RESIDENT_ID = 1, BANK_CARD = 2, SEPARATED = -1, NONE = -2 };

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int in_block(unsigned char c) { return is_digit(c) || c == ' ' || c == '-'; }

/* A byte of an e-mail's local part. */
static int is_local(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '.'
           || c == '_' || c == '%' || c == '+' || c == '-';
}

/* A byte that may continue an e-mail's local part, or the '@' itself. */
static int local_or_at(unsigned char c) { return is_local(c) || c == '@'; }

/* A byte that may end an e-mail's domain, or the '@' itself. */
static int domain_or_at(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '.'
           || c == '-' || c == '@';
}

static int is_letter(unsigned char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

static int is_label(unsigned char c) { return is_letter(c) || is_digit(c) || c == '-'; }

/* Where the e-mail whose '@' is at s[at] ends, or -1 when there is none. */
static Py_ssize_t email_end(const unsigned char *s, Py_ssize_t n, Py_ssize_t at)
{
    if (at == 0 || !is_local(s[at - 1]))
        return -1;
    Py_ssize_t end = -1, i = at + 1;
    for (int label = 1;; label++) {
        Py_ssize_t start = i;
        int letters_only = 1;
        while (i < n && is_label(s[i]))
            letters_only &= is_letter(s[i++]);
        if (i == start)
            return end; /* an empty label ends the domain */
        if (label > 1 && letters_only && i - start >= 2 && i - start <= 24)
            end = i;
        if (i == n || s[i] != '.')
            return end;
        i++;
    }
}

static int two_digits(const unsigned char *s) { return (s[0] - '0') * 10 + (s[1] - '0'); }

/* GB 11643: 17 digits and a check character, with a real birth date at bytes 6-13. */
static int is_resident_id(const unsigned char *s, const char *today)
{
    static const int weights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char checks[] = "10X98765432";
    static const int month_days[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        if (!is_digit(s[i]))
            return 0;
        sum += (s[i] - '0') * weights[i];
    }
    const unsigned char *born = s + 6;
    int month = two_digits(born + 4), day = two_digits(born + 6);
    if (month < 1 || month > 12 || day < 1 || day > month_days[month])
        return 0;
    if (memcmp(born, "19000101", 8) < 0 || memcmp(born, today, 8) > 0)
        return 0;
    if (month == 2 && day == 29) {
        int year = two_digits(born) * 100 + two_digits(born + 2);
        if (year % 4 != 0 || (year % 100 == 0 && year % 400 != 0))
            return 0;
    }
    unsigned char check = s[17] == 'x' ? 'X' : s[17];
    return check == (unsigned char)checks[sum % 11];
}

static int luhn_valid(const unsigned char *s, Py_ssize_t size)
{
    int sum = 0, doubled = 0;
    for (Py_ssize_t i = size - 1; i >= 0; i--, doubled ^= 1) {
        int d = s[i] - '0';
        sum += doubled ? (d > 4 ? d * 2 - 9 : d * 2) : d;
    }
    return sum % 10 == 0;
}

static int mobile_second(unsigned char c) { return c >= '3' && c <= '9'; }

/* The kind of a candidate without separators (only an ID may end in X). */
static int bare_kind(const unsigned char *s, Py_ssize_t size, const char *today)
{
    if (size == 18 && is_resident_id(s, today))
        return RESIDENT_ID;
    if (!is_digit(s[size - 1]))
        return NONE;
    if ((size == 11 && s[0] == '1' && mobile_second(s[1]))
        || (size == 13 && memcmp(s, "861", 3) == 0 && mobile_second(s[3])))
        return MOBILE;
    if (size >= 13 && size <= 19 && (luhn_valid(s, size) || (size >= 16 && s[0] == '6' && s[1] == '2')))
        return BANK_CARD;
    return NONE;
}

static int add_undecided(PyObject *undecided, int kind, Py_ssize_t start, Py_ssize_t end)
{
    PyObject *item = Py_BuildValue("(inn)", kind, start, end);
    if (item == NULL)
        return -1;
    int failed = PyList_Append(undecided, item);
    Py_DECREF(item);
    return failed;
}

static PyObject *scan(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer body;
    const char *today;
    Py_ssize_t today_size;
    if (!PyArg_ParseTuple(args, "y*y#:scan", &body, &today, &today_size))
        return NULL;
    if (today_size != 8) {
        PyBuffer_Release(&body);
        return PyErr_Format(PyExc_ValueError, "today must be 8 bytes (YYYYMMDD)");
    }
    const unsigned char *s = body.buf;
    const Py_ssize_t n = body.len;
    Py_ssize_t counts[3] = {0, 0, 0};
    PyObject *undecided = PyList_New(0);
    if (undecided == NULL) {
        PyBuffer_Release(&body);
        return NULL;
    }
    Py_ssize_t i = 0;
    while (i < n) {
        if (!in_block(s[i])) {
            i++;
            continue;
        }
        Py_ssize_t block = i;
        while (i < n && in_block(s[i]))
            i++;
        const Py_ssize_t block_end = i; /* the next scan starts here: s[i] is no block byte */
        if (block_end - block < 9)
            continue;
        Py_ssize_t start = block, last = block_end; /* first digit, one past the last digit */
        while (start < block_end && !is_digit(s[start]))
            start++;
        if (start == block_end)
            continue;
        while (!is_digit(s[last - 1]))
            last--;
        Py_ssize_t end;
        if (block_end < n && (s[block_end] == 'X' || s[block_end] == 'x') && block_end - start >= 9)
            end = block_end + 1;
        else if (last - start >= 10)
            end = last;
        else
            continue;
        const Py_ssize_t size = end - start;
        int kind = memchr(s + start, ' ', size) || memchr(s + start, '-', size)
                       ? SEPARATED
                       : bare_kind(s + start, size, today);
        if (kind == NONE)
            continue;
        if (kind == SEPARATED || (end < n && local_or_at(s[end]))
            || (start > 0 && domain_or_at(s[start - 1]))) {
            if (add_undecided(undecided, kind, start, end) < 0) {
                Py_DECREF(undecided);
                PyBuffer_Release(&body);
                return NULL;
            }
        }
        else
            counts[kind]++;
    }
    Py_ssize_t emails = 0;
    /* A domain holds no '@': the next e-mail's '@' is past this one's end either way. */
    for (const unsigned char *at = memchr(s, '@', n); at != NULL;
         at = memchr(at + 1, '@', n - (at + 1 - s)))
        emails += email_end(s, n, at - s) >= 0;
    PyBuffer_Release(&body);
    return Py_BuildValue("(nnnnN)", counts[MOBILE], counts[RESIDENT_ID], counts[BANK_CARD], emails,
                         undecided);
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(body, today) -> (mobiles, resident_ids, bank_cards, emails, undecided)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "gateway._piiscan",
    .m_doc = "PII counted over a whole body (see gateway.pii.count_pii).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__piiscan(void) { return PyModule_Create(&module); }
