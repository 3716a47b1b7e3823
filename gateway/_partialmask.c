/* The catalog's `partial` hide action as a compiled callable.
 *
 * PartialMask(keep_first, keep_last, other) is called once per hidden value: a str keeps its
 * first and last characters (code points) with '*' between, and is all '*' when nothing would
 * be left to hide; any other value goes to other(value, self). The JSON filter maps it over
 * whole columns of records: in Python each value cost a frame and an f-string (~0.3 us).
 * gateway.masking builds these; its tests hold them to the rule.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

typedef struct {
    PyObject_HEAD
    Py_ssize_t first, last;
    PyObject *other;
    vectorcallfunc vectorcall;
} PartialMask;

static PyObject *mask_text(PyObject *text, Py_ssize_t first, Py_ssize_t last)
{
#if PY_VERSION_HEX < 0x030C0000 /* strings are always ready from 3.12 on */
    if (PyUnicode_READY(text) < 0)
        return NULL;
#endif
    const Py_ssize_t size = PyUnicode_GET_LENGTH(text);
    if (size <= first + last)
        first = last = 0; /* nothing left to hide: hide it all */
    /* The result must be built with its exact widest character: CPython compares strings of
     * different storage widths as unequal. The characters are copied one by one:
     * PyUnicode_CopyCharacters checks a Latin-1 source's width from its start, not from the
     * copied range, and refuses some valid copies. */
    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_UCS4 widest = '*';
    for (Py_ssize_t i = 0; i < first; i++)
        widest = Py_MAX(widest, PyUnicode_READ(kind, data, i));
    for (Py_ssize_t i = size - last; i < size; i++)
        widest = Py_MAX(widest, PyUnicode_READ(kind, data, i));
    PyObject *out = PyUnicode_New(size, widest);
    if (out == NULL)
        return NULL;
    const int out_kind = PyUnicode_KIND(out);
    void *out_data = PyUnicode_DATA(out);
    for (Py_ssize_t i = 0; i < size; i++) {
        Py_UCS4 c = i < first || i >= size - last ? PyUnicode_READ(kind, data, i) : '*';
        PyUnicode_WRITE(out_kind, out_data, i, c);
    }
    return out;
}

static PyObject *call(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PartialMask *self = (PartialMask *)callable;
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0)) {
        PyErr_SetString(PyExc_TypeError, "PartialMask takes one value");
        return NULL;
    }
    if (PyUnicode_CheckExact(args[0]))
        return mask_text(args[0], self->first, self->last);
    return PyObject_CallFunctionObjArgs(self->other, args[0], callable, NULL);
}

static PyObject *create(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t first, last;
    PyObject *other;
    static char *names[] = {"keep_first", "keep_last", "other", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "nnO:PartialMask", names, &first, &last, &other))
        return NULL;
    if (first < 0 || last < 0 || !PyCallable_Check(other)) {
        PyErr_SetString(PyExc_ValueError, "PartialMask needs counts >= 0 and a callable");
        return NULL;
    }
    PartialMask *self = (PartialMask *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->first = first;
    self->last = last;
    self->other = Py_NewRef(other);
    self->vectorcall = call;
    return (PyObject *)self;
}

static int traverse(PartialMask *self, visitproc visit, void *arg)
{
    Py_VISIT(self->other);
    return 0;
}

static int clear(PartialMask *self)
{
    Py_CLEAR(self->other);
    return 0;
}

static void dealloc(PartialMask *self)
{
    PyObject_GC_UnTrack(self);
    clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *repr(PartialMask *self)
{
    return PyUnicode_FromFormat("PartialMask(keep_first=%zd, keep_last=%zd)", self->first, self->last);
}

static PyTypeObject PartialMaskType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gateway._partialmask.PartialMask",
    .tp_basicsize = sizeof(PartialMask),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "PartialMask(keep_first, keep_last, other): the partial hide action for one value",
    .tp_new = create,
    .tp_dealloc = (destructor)dealloc,
    .tp_traverse = (traverseproc)traverse,
    .tp_clear = (inquiry)clear,
    .tp_repr = (reprfunc)repr,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(PartialMask, vectorcall),
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "gateway._partialmask",
    .m_doc = "The partial hide action, compiled (see gateway.masking).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__partialmask(void)
{
    if (PyType_Ready(&PartialMaskType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddObjectRef(m, "PartialMask", (PyObject *)&PartialMaskType) < 0)
        Py_CLEAR(m);
    return m;
}
