/* benchmarks._rxbatch: the webinar benchmark's batch receive path (Linux).
 *
 * One Drainer per generator process holds one slot per viewer socket (an fd the caller owns, a dup
 * of the viewer's ICE socket) in its own epoll set.  Drainer.drain() takes every readable socket
 * and reads it with recvmmsg(2) until it is empty, counting each SRTP RTP datagram from its clear
 * 12-byte header into the slot, in C. SRTCP (second byte 192..223: the server's sender reports,
 * which a counting client has no use for) is counted and dropped there too. Every other datagram
 * (STUN: first byte 0..3, DTLS: 20..63, anything shorter than an RTP header plus the SRTP tag)
 * comes back to Python to go to the viewer's own datagram_received.
 *
 * A slot counts what benchmarks.webinar.ViewerCounter counts, with the same meaning: RTP packets,
 * their bytes without the SRTP tag (the decrypted length), the longest pause between two packets
 * (ms of CLOCK_MONOTONIC, i.e. int(time.monotonic() * 1000), taken once per recvmmsg call), per
 * SSRC the first and the highest extended sequence number, video packets (payload type in the
 * slot's set) and the arrival (time.monotonic()) of the first audio and video packet.
 *
 *   Drainer()
 *   add(fd, tag_bytes) -> slot            register fd (EPOLLIN, level-triggered)
 *   remove(slot)                          unregister (the caller closes its fd after); the counts stay
 *   set_video_pts(slot, pts)              payload types counted as video (0..127)
 *   seed(slot, rtp, rtp_bytes, video, last_ms, max_gap_ms, first_audio_t, first_video_t, streams)
 *                                         start from a Python counter's state; streams: [(ssrc, first, highest)]
 *   count(slot, data) -> bool             count one RTP packet already decrypted (no tag); True when it
 *                                         was the first audio or video packet
 *   drain() -> (others, firsts)           others: [(slot, bytes, addr)], firsts: slots whose first audio or
 *                                         video packet came in this drain
 *   read(slot, take_gap) -> (rtp, rtp_bytes, video, last_ms, max_gap_ms, first_audio_t, first_video_t,
 *                            streams, ssrc_overflow, errors)      take_gap: max_gap_ms is reset to 0
 *   stats() -> dict                       drains, epoll events, recvmmsg calls, datagrams, RTP, SRTCP, others
 *
 * No authentication: a forged or replayed SRTP packet would be counted, as in the raw mode.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if defined(__linux__)
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#define HAVE_RXBATCH 1
#endif

#ifdef HAVE_RXBATCH

#define VLEN 32          /* datagrams per recvmmsg call */
#define BUFSZ 65536      /* per datagram: never truncated on loopback */
#define MAX_EVENTS 1024  /* per epoll_wait call */
#define MAX_STREAMS 16   /* SSRCs per slot (a viewer gets 2); more are counted, not tracked */

typedef struct {
    uint32_t ssrc;
    int64_t first, highest; /* extended sequence numbers */
} stream_t;

typedef struct {
    int fd; /* -1: removed */
    int tag;
    uint8_t video_pts[16]; /* bitmap of payload types 0..127 */
    uint64_t rtp, rtp_bytes, video, ssrc_overflow, errors;
    int64_t last_ms, max_gap_ms;
    double first_audio_t, first_video_t;
    int nstreams;
    int first_pending;
    stream_t streams[MAX_STREAMS];
} slot_t;

typedef struct {
    PyObject_HEAD
    int epfd;
    slot_t *slots;
    Py_ssize_t nslots, cap;
    unsigned char *bufs;
    struct mmsghdr *msgs;
    struct iovec *iov;
    struct sockaddr_storage *names;
    struct epoll_event *events;
    uint64_t drains, events_n, calls, datagrams, rtp, srtcp, others;
} Drainer;

static double
mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* count one RTP packet of payload length len (tag already excluded) in s; 1 when a first arrival */
static int
count_packet(slot_t *s, const unsigned char *d, Py_ssize_t len, int64_t now_ms, double now_s)
{
    int first = 0;
    s->rtp++;
    s->rtp_bytes += (uint64_t)len;
    if (s->last_ms && now_ms - s->last_ms > s->max_gap_ms)
        s->max_gap_ms = now_ms - s->last_ms;
    s->last_ms = now_ms;
    if (len >= 12) {
        uint32_t ssrc = ((uint32_t)d[8] << 24) | ((uint32_t)d[9] << 16) | ((uint32_t)d[10] << 8) | d[11];
        int seq = (d[2] << 8) | d[3];
        int k;
        for (k = 0; k < s->nstreams; k++)
            if (s->streams[k].ssrc == ssrc)
                break;
        if (k == s->nstreams) {
            if (k < MAX_STREAMS) {
                s->streams[k].ssrc = ssrc;
                s->streams[k].first = s->streams[k].highest = seq;
                s->nstreams++;
            } else {
                s->ssrc_overflow++;
            }
        } else {
            int delta = (int)((seq - s->streams[k].highest) & 0xFFFF);
            if (0 < delta && delta < 0x8000) /* newer (a reordered or repeated packet changes nothing) */
                s->streams[k].highest += delta;
        }
    }
    if (len < 2)
        return 0;
    int pt = d[1] & 0x7F;
    if (s->video_pts[pt >> 3] & (1 << (pt & 7))) {
        s->video++;
        if (s->first_video_t == 0.0) {
            s->first_video_t = now_s;
            first = 1;
        }
    } else if (s->first_audio_t == 0.0) {
        s->first_audio_t = now_s;
        first = 1;
    }
    return first;
}

static slot_t *
get_slot(Drainer *self, Py_ssize_t i)
{
    if (i < 0 || i >= self->nslots) {
        PyErr_SetString(PyExc_IndexError, "no such slot");
        return NULL;
    }
    return &self->slots[i];
}

static void
Drainer_dealloc(Drainer *self)
{
    if (self->epfd >= 0)
        close(self->epfd);
    PyMem_Free(self->slots);
    PyMem_Free(self->bufs);
    PyMem_Free(self->msgs);
    PyMem_Free(self->iov);
    PyMem_Free(self->names);
    PyMem_Free(self->events);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
Drainer_init(Drainer *self, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, ":Drainer", kwlist))
        return -1;
    if (self->epfd >= 0)
        return 0;
    self->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (self->epfd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    self->bufs = PyMem_Malloc((size_t)VLEN * BUFSZ);
    self->msgs = PyMem_Calloc(VLEN, sizeof(struct mmsghdr));
    self->iov = PyMem_Calloc(VLEN, sizeof(struct iovec));
    self->names = PyMem_Calloc(VLEN, sizeof(struct sockaddr_storage));
    self->events = PyMem_Calloc(MAX_EVENTS, sizeof(struct epoll_event));
    if (!self->bufs || !self->msgs || !self->iov || !self->names || !self->events) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static PyObject *
Drainer_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    Drainer *self = (Drainer *)type->tp_alloc(type, 0);
    (void)args;
    (void)kw;
    if (self != NULL)
        self->epfd = -1;
    return (PyObject *)self;
}

static PyObject *
Drainer_add(Drainer *self, PyObject *args)
{
    int fd, tag;
    if (!PyArg_ParseTuple(args, "ii:add", &fd, &tag))
        return NULL;
    if (fd < 0 || tag < 0 || tag > 64) {
        PyErr_SetString(PyExc_ValueError, "bad fd or tag_bytes");
        return NULL;
    }
    if (self->nslots == self->cap) {
        Py_ssize_t cap = self->cap ? self->cap * 2 : 256;
        slot_t *p = PyMem_Realloc(self->slots, (size_t)cap * sizeof(slot_t));
        if (p == NULL)
            return PyErr_NoMemory();
        self->slots = p;
        self->cap = cap;
    }
    Py_ssize_t i = self->nslots;
    slot_t *s = &self->slots[i];
    memset(s, 0, sizeof(*s));
    s->fd = fd;
    s->tag = tag;
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.u64 = (uint64_t)i;
    if (epoll_ctl(self->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    self->nslots++;
    return PyLong_FromSsize_t(i);
}

static PyObject *
Drainer_remove(Drainer *self, PyObject *args)
{
    Py_ssize_t i;
    if (!PyArg_ParseTuple(args, "n:remove", &i))
        return NULL;
    slot_t *s = get_slot(self, i);
    if (s == NULL)
        return NULL;
    if (s->fd >= 0) {
        (void)epoll_ctl(self->epfd, EPOLL_CTL_DEL, s->fd, NULL); /* the fd may be closed already */
        s->fd = -1;
    }
    Py_RETURN_NONE;
}

static PyObject *
Drainer_set_video_pts(Drainer *self, PyObject *args)
{
    Py_ssize_t i;
    PyObject *pts;
    if (!PyArg_ParseTuple(args, "nO:set_video_pts", &i, &pts))
        return NULL;
    slot_t *s = get_slot(self, i);
    if (s == NULL)
        return NULL;
    uint8_t bitmap[16] = {0};
    PyObject *it = PyObject_GetIter(pts);
    if (it == NULL)
        return NULL;
    PyObject *item;
    while ((item = PyIter_Next(it)) != NULL) {
        long pt = PyLong_AsLong(item);
        Py_DECREF(item);
        if (pt == -1 && PyErr_Occurred())
            break;
        if (pt < 0 || pt > 127) {
            PyErr_SetString(PyExc_ValueError, "payload types are 0..127");
            break;
        }
        bitmap[pt >> 3] |= (uint8_t)(1 << (pt & 7));
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    memcpy(s->video_pts, bitmap, sizeof(bitmap));
    Py_RETURN_NONE;
}

static PyObject *
Drainer_seed(Drainer *self, PyObject *args)
{
    Py_ssize_t i;
    unsigned long long rtp, rtp_bytes, video;
    long long last_ms, max_gap_ms;
    double fa, fv;
    PyObject *streams;
    if (!PyArg_ParseTuple(args, "nKKKLLddO:seed", &i, &rtp, &rtp_bytes, &video, &last_ms, &max_gap_ms, &fa, &fv,
                          &streams))
        return NULL;
    slot_t *s = get_slot(self, i);
    if (s == NULL)
        return NULL;
    PyObject *seq = PySequence_Fast(streams, "streams must be a sequence of (ssrc, first, highest)");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MAX_STREAMS) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "too many streams");
        return NULL;
    }
    stream_t st[MAX_STREAMS];
    for (Py_ssize_t k = 0; k < n; k++) {
        unsigned long ssrc;
        long long first, highest;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, k), "kLL", &ssrc, &first, &highest)) {
            Py_DECREF(seq);
            return NULL;
        }
        st[k].ssrc = (uint32_t)ssrc;
        st[k].first = first;
        st[k].highest = highest;
    }
    Py_DECREF(seq);
    s->rtp = rtp;
    s->rtp_bytes = rtp_bytes;
    s->video = video;
    s->last_ms = last_ms;
    s->max_gap_ms = max_gap_ms;
    s->first_audio_t = fa;
    s->first_video_t = fv;
    s->nstreams = (int)n;
    memcpy(s->streams, st, (size_t)n * sizeof(stream_t));
    Py_RETURN_NONE;
}

static PyObject *
Drainer_count(Drainer *self, PyObject *args)
{
    Py_ssize_t i;
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "ny*:count", &i, &data))
        return NULL;
    slot_t *s = get_slot(self, i);
    if (s == NULL) {
        PyBuffer_Release(&data);
        return NULL;
    }
    double now_s = mono_s();
    int first = count_packet(s, data.buf, data.len, (int64_t)(now_s * 1000), now_s);
    PyBuffer_Release(&data);
    return PyBool_FromLong(first);
}

static PyObject *
make_addr(const struct sockaddr_storage *ss)
{
    char host[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        return Py_BuildValue("(si)", host, (int)ntohs(a->sin_port));
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        return Py_BuildValue("(siII)", host, (int)ntohs(a->sin6_port), (unsigned int)ntohl(a->sin6_flowinfo),
                             (unsigned int)a->sin6_scope_id);
    }
    Py_RETURN_NONE;
}

/* read slot i's socket until it is empty; 0, or -1 with an exception set */
static int
drain_slot(Drainer *self, Py_ssize_t i, PyObject *others, PyObject *firsts)
{
    for (;;) {
        slot_t *s = &self->slots[i];
        if (s->fd < 0)
            return 0;
        for (int k = 0; k < VLEN; k++) {
            self->iov[k].iov_base = self->bufs + (size_t)k * BUFSZ;
            self->iov[k].iov_len = BUFSZ;
            self->msgs[k].msg_hdr.msg_iov = &self->iov[k];
            self->msgs[k].msg_hdr.msg_iovlen = 1;
            self->msgs[k].msg_hdr.msg_name = &self->names[k];
            self->msgs[k].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
            self->msgs[k].msg_hdr.msg_control = NULL;
            self->msgs[k].msg_hdr.msg_controllen = 0;
            self->msgs[k].msg_hdr.msg_flags = 0;
        }
        int n = recvmmsg(s->fd, self->msgs, VLEN, MSG_DONTWAIT, NULL);
        self->calls++;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                s->errors++; /* e.g. ECONNREFUSED from an ICMP error: reported once, then cleared */
            return 0;
        }
        double now_s = mono_s();
        int64_t now_ms = (int64_t)(now_s * 1000);
        int first = 0;
        self->datagrams += (uint64_t)n;
        for (int k = 0; k < n; k++) {
            const unsigned char *d = self->bufs + (size_t)k * BUFSZ;
            Py_ssize_t len = (Py_ssize_t)self->msgs[k].msg_len;
            if (len >= 8 && d[0] >= 128 && d[0] <= 191 && d[1] >= 192 && d[1] <= 223) {
                self->srtcp++; /* the server's sender reports: counted, not passed on */
                continue;
            }
            if (len < 12 + s->tag || d[0] < 128 || d[0] > 191 || (d[1] >= 192 && d[1] <= 223)) {
                PyObject *addr = make_addr(&self->names[k]);
                PyObject *item = addr ? Py_BuildValue("(ny#N)", i, (const char *)d, len, addr) : NULL;
                if (item == NULL || PyList_Append(others, item) < 0) {
                    Py_XDECREF(item);
                    return -1;
                }
                Py_DECREF(item);
                self->others++;
                continue;
            }
            self->rtp++;
            first |= count_packet(s, d, len - s->tag, now_ms, now_s);
        }
        if (first) {
            PyObject *v = PyLong_FromSsize_t(i);
            if (v == NULL || PyList_Append(firsts, v) < 0) {
                Py_XDECREF(v);
                return -1;
            }
            Py_DECREF(v);
        }
        if (n < VLEN)
            return 0;
    }
}

static PyObject *
Drainer_drain(Drainer *self, PyObject *unused)
{
    (void)unused;
    PyObject *others = PyList_New(0), *firsts = PyList_New(0);
    if (others == NULL || firsts == NULL)
        goto fail;
    self->drains++;
    for (int round = 0; round < 64; round++) {
        int n = epoll_wait(self->epfd, self->events, MAX_EVENTS, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            PyErr_SetFromErrno(PyExc_OSError);
            goto fail;
        }
        self->events_n += (uint64_t)n;
        for (int e = 0; e < n; e++) {
            Py_ssize_t i = (Py_ssize_t)self->events[e].data.u64;
            if (i < self->nslots && drain_slot(self, i, others, firsts) < 0)
                goto fail;
        }
        if (n < MAX_EVENTS)
            break;
    }
    return Py_BuildValue("(NN)", others, firsts);
fail:
    Py_XDECREF(others);
    Py_XDECREF(firsts);
    return NULL;
}

static PyObject *
Drainer_read(Drainer *self, PyObject *args)
{
    Py_ssize_t i;
    int take_gap = 0;
    if (!PyArg_ParseTuple(args, "n|p:read", &i, &take_gap))
        return NULL;
    slot_t *s = get_slot(self, i);
    if (s == NULL)
        return NULL;
    PyObject *streams = PyList_New(s->nstreams);
    if (streams == NULL)
        return NULL;
    for (int k = 0; k < s->nstreams; k++) {
        PyObject *t = Py_BuildValue("(kLL)", (unsigned long)s->streams[k].ssrc, (long long)s->streams[k].first,
                                    (long long)s->streams[k].highest);
        if (t == NULL) {
            Py_DECREF(streams);
            return NULL;
        }
        PyList_SET_ITEM(streams, k, t);
    }
    long long gap = s->max_gap_ms;
    if (take_gap)
        s->max_gap_ms = 0;
    return Py_BuildValue("(KKKLLddNKK)", (unsigned long long)s->rtp, (unsigned long long)s->rtp_bytes,
                         (unsigned long long)s->video, (long long)s->last_ms, gap, s->first_audio_t,
                         s->first_video_t, streams, (unsigned long long)s->ssrc_overflow,
                         (unsigned long long)s->errors);
}

static PyObject *
Drainer_stats(Drainer *self, PyObject *unused)
{
    (void)unused;
    return Py_BuildValue("{sKsKsKsKsKsKsKsn}", "drains", (unsigned long long)self->drains, "events",
                         (unsigned long long)self->events_n, "recvmmsg", (unsigned long long)self->calls,
                         "datagrams", (unsigned long long)self->datagrams, "rtp", (unsigned long long)self->rtp,
                         "srtcp", (unsigned long long)self->srtcp, "others", (unsigned long long)self->others,
                         "slots", self->nslots);
}

static PyMethodDef Drainer_methods[] = {
    {"add", (PyCFunction)Drainer_add, METH_VARARGS, "add(fd, tag_bytes) -> slot"},
    {"remove", (PyCFunction)Drainer_remove, METH_VARARGS, "remove(slot)"},
    {"set_video_pts", (PyCFunction)Drainer_set_video_pts, METH_VARARGS, "set_video_pts(slot, pts)"},
    {"seed", (PyCFunction)Drainer_seed, METH_VARARGS,
     "seed(slot, rtp, rtp_bytes, video, last_ms, max_gap_ms, first_audio_t, first_video_t, streams)"},
    {"count", (PyCFunction)Drainer_count, METH_VARARGS, "count(slot, data) -> first arrival"},
    {"drain", (PyCFunction)Drainer_drain, METH_NOARGS, "drain() -> (others, firsts)"},
    {"read", (PyCFunction)Drainer_read, METH_VARARGS, "read(slot, take_gap=False) -> counts"},
    {"stats", (PyCFunction)Drainer_stats, METH_NOARGS, "stats() -> dict"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DrainerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "benchmarks._rxbatch.Drainer",
    .tp_basicsize = sizeof(Drainer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "recvmmsg over an epoll set of viewer sockets, counting SRTP RTP datagrams per slot",
    .tp_new = Drainer_new,
    .tp_init = (initproc)Drainer_init,
    .tp_dealloc = (destructor)Drainer_dealloc,
    .tp_methods = Drainer_methods,
};

#endif

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "benchmarks._rxbatch", "batch receive path of the webinar benchmark (recvmmsg, epoll)",
    -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__rxbatch(void)
{
#ifndef HAVE_RXBATCH
    PyErr_SetString(PyExc_ImportError, "benchmarks._rxbatch needs Linux (recvmmsg, epoll)");
    return NULL;
#else
    if (PyType_Ready(&DrainerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&DrainerType);
    if (PyModule_AddObject(m, "Drainer", (PyObject *)&DrainerType) < 0) {
        Py_DECREF(&DrainerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
#endif
}
