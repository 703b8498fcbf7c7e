/* sfu._fastpath: the compiled fan-out of one incoming RTP packet to many subscribers (Linux).
 *
 * The forwarding core's steady state, per consumer, is: copy the packet, rewrite payload type,
 * sequence number, timestamp, SSRC and header-extension ids, SRTP-protect it with the subscriber
 * transport's libsrtp context, and send it to the subscriber's address. In Python that costs
 * ~3 us per consumer on top of libsrtp and the kernel; here it is one C loop per incoming packet
 * and one sendmmsg(2) per socket.
 *
 *   Slot()
 *       One consumer's steady state. ``configure(...)`` sets everything (the destination, the SRTP
 *       context, the rewrite and the last-sent state) and zeroes the counters. Read-only:
 *       ``packets``, ``octets`` (since configure), ``last_seq`` (-1: none), ``last_ts``,
 *       ``last_time`` (CLOCK_MONOTONIC seconds, the clock of Python's time.monotonic()).
 *
 *   FanOut(srtp_protect: int, srtp_protect_rtcp: int = 0)
 *       The slots fed by one stream (a producer, or one simulcast layer). ``srtp_protect`` and
 *       ``srtp_protect_rtcp`` are the addresses of libsrtp's ``srtp_err_status_t
 *       srtp_protect(srtp_t, void *, int *)`` and ``srtp_protect_rtcp`` (with the same signature;
 *       the ones pylibsrtp's cffi module links). ``add(slot)`` / ``remove(slot)`` (idempotent),
 *       ``len()``.
 *       ``forward(data, seq, ts, ext_profile, ext_start, ext_end) -> int``: the packet to every
 *       slot; returns how many went out. ``last_bytes``: bytes sent by that call. ``take_errors()``
 *       -> (srtp, send): packets that failed since the last call (libsrtp refused; the socket
 *       refused; a full socket is waited for, at most 5 ms per call and 10 ms per 100 ms for the
 *       whole process (``send_waits`` counts the waits), then its packets are dropped, as
 *       real-time media should, rather than stall the event loop), then zeroes. A packet longer
 *       than MAX_PACKET counts as an SRTP error for every slot (the Python path refuses it too).
 *       ``sender_report(ntp, rtp_ts) -> int``: the publisher's sender report, translated for every
 *       slot that has sent a packet (its SSRC, ``rtp_ts`` + its timestamp offset, its packet and
 *       octet counts including the ``packets`` / ``octets`` it was configured with), as SRTCP;
 *       returns how many went out (needs ``srtp_protect_rtcp``).
 *
 * The caller (sfu.consumer / sfu.producer) has parsed and bounds-checked the header: ext_start and
 * ext_end lie inside data, ext_profile is 0 without an extension block. The GIL is held throughout:
 * the sockets are non-blocking and the SRTP contexts are only used from the event loop's thread.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#if defined(__linux__)
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#define HAVE_FASTPATH 1
#endif

#ifdef HAVE_FASTPATH

#define SRTP_TRAILER 144 /* SRTP_MAX_TAG_LEN + SRTP_MAX_MKI_LEN */
#define MAX_PACKET 1500
#define CHUNK 512
#define SEND_WAIT_MS 5      /* the longest one call waits for room in a full socket */
#define WAIT_WINDOW_MS 100  /* and all calls together at most WAIT_SHARE_MS in any such window: */
#define WAIT_SHARE_MS 10    /* a saturated link drops packets, it does not stall the event loop */

typedef int (*srtp_protect_fn)(void *ctx, void *rtp_hdr, int *len_ptr);

typedef struct {
    PyObject_HEAD
    int fd;
    PyObject *addr;    /* bytes: a packed sockaddr_in / sockaddr_in6 */
    PyObject *session; /* keeps the libsrtp context alive */
    void *srtp;
    unsigned char pt;
    uint32_t ssrc;
    uint16_t seq_off;
    uint32_t ts_off;
    int has_map;
    unsigned char id_map[256];
    uint16_t pid_off;       /* VP8 PictureID offset after a simulcast switch (sfu/vp8_munger.py) */
    unsigned char tl0_off;  /* VP8 TL0PICIDX offset */
    long last_seq;
    uint32_t last_ts;
    double last_time;
    unsigned long long packets;
    unsigned long long octets;
    unsigned long long base_packets; /* sent before configure(): for sender reports */
    unsigned long long base_octets;
    int members; /* FanOuts holding this slot */
} Slot;

typedef struct {
    PyObject_HEAD
    srtp_protect_fn protect;
    srtp_protect_fn protect_rtcp;
    Slot **slots;
    Py_ssize_t size;
    Py_ssize_t capacity;
    unsigned char *arena;
    size_t arena_size;
    struct mmsghdr *msgs;
    struct iovec *iov;
    unsigned char *ok;
    size_t io_capacity;
    unsigned long long last_bytes;
    unsigned long long srtp_errors;
    unsigned long long send_errors;
    unsigned long long send_waits; /* times a send waited for room in the socket */
} FanOut;

static PyTypeObject SlotType;

/* ---- Slot ------------------------------------------------------------------------------------ */

static PyObject *
slot_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    Slot *self = (Slot *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->fd = -1;
    self->last_seq = -1;
    return (PyObject *)self;
}

static void
slot_dealloc(Slot *self)
{
    Py_CLEAR(self->addr);
    Py_CLEAR(self->session);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
slot_configure(Slot *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fd", "addr", "srtp", "session", "payload_type", "ssrc", "seq_offset",
                             "ts_offset", "id_map", "last_seq", "last_ts", "last_time", "packets", "octets",
                             "vp8_pid_offset", "vp8_tl0_offset", NULL};
    int fd, pt;
    PyObject *addr, *session, *id_map;
    unsigned long long srtp, ssrc, seq_off, ts_off, last_ts, base_packets = 0, base_octets = 0;
    int pid_off = 0, tl0_off = 0;
    long last_seq;
    double last_time;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iOKOiKKKOlKd|KKii:configure", kwlist, &fd, &addr, &srtp,
                                     &session, &pt, &ssrc, &seq_off, &ts_off, &id_map, &last_seq, &last_ts,
                                     &last_time, &base_packets, &base_octets, &pid_off, &tl0_off))
        return NULL;
    if (fd < 0) {
        PyErr_SetString(PyExc_ValueError, "bad file descriptor");
        return NULL;
    }
    if (!PyBytes_Check(addr)) {
        PyErr_SetString(PyExc_TypeError, "addr must be bytes (a packed sockaddr)");
        return NULL;
    }
    Py_ssize_t alen = PyBytes_GET_SIZE(addr);
    const struct sockaddr *sa = (const struct sockaddr *)PyBytes_AS_STRING(addr);
    if (!((alen == (Py_ssize_t)sizeof(struct sockaddr_in) && sa->sa_family == AF_INET) ||
          (alen == (Py_ssize_t)sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6))) {
        PyErr_SetString(PyExc_ValueError, "addr is not a packed sockaddr_in / sockaddr_in6");
        return NULL;
    }
    if (srtp == 0 || session == Py_None) {
        PyErr_SetString(PyExc_ValueError, "no SRTP context (srtp and the session that owns it)");
        return NULL;
    }
    if (pt < 0 || pt > 127 || ssrc > 0xFFFFFFFFULL || seq_off > 0xFFFF || ts_off > 0xFFFFFFFFULL ||
        last_ts > 0xFFFFFFFFULL || last_seq < -1 || last_seq > 0xFFFF || pid_off < 0 || pid_off > 0x7FFF ||
        tl0_off < 0 || tl0_off > 0xFF) {
        PyErr_SetString(PyExc_ValueError, "a field is out of range");
        return NULL;
    }
    if (id_map != Py_None && !(PyBytes_Check(id_map) && PyBytes_GET_SIZE(id_map) == 256)) {
        PyErr_SetString(PyExc_ValueError, "id_map must be None or 256 bytes");
        return NULL;
    }
    Py_INCREF(addr);
    Py_XSETREF(self->addr, addr);
    Py_INCREF(session);
    Py_XSETREF(self->session, session);
    self->fd = fd;
    self->srtp = (void *)(uintptr_t)srtp;
    self->pt = (unsigned char)pt;
    self->ssrc = (uint32_t)ssrc;
    self->seq_off = (uint16_t)seq_off;
    self->ts_off = (uint32_t)ts_off;
    self->has_map = id_map != Py_None;
    if (self->has_map)
        memcpy(self->id_map, PyBytes_AS_STRING(id_map), 256);
    self->last_seq = last_seq;
    self->last_ts = (uint32_t)last_ts;
    self->last_time = last_time;
    self->packets = 0;
    self->octets = 0;
    self->base_packets = base_packets;
    self->base_octets = base_octets;
    self->pid_off = (uint16_t)pid_off;
    self->tl0_off = (unsigned char)tl0_off;
    Py_RETURN_NONE;
}

static PyMethodDef slot_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))slot_configure, METH_VARARGS | METH_KEYWORDS,
     "configure(fd, addr, srtp, session, payload_type, ssrc, seq_offset, ts_offset, id_map, last_seq, "
     "last_ts, last_time, packets=0, octets=0): set the whole steady state; zeroes packets and octets "
     "(the packets/octets given are what was sent before, for sender reports)"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef slot_members[] = {
    {"packets", T_ULONGLONG, offsetof(Slot, packets), READONLY, "packets sent since configure()"},
    {"octets", T_ULONGLONG, offsetof(Slot, octets), READONLY, "payload octets sent since configure()"},
    {"last_seq", T_LONG, offsetof(Slot, last_seq), READONLY, "newest sequence number sent (-1: none)"},
    {"last_ts", T_UINT, offsetof(Slot, last_ts), READONLY, "timestamp of last_seq"},
    {"last_time", T_DOUBLE, offsetof(Slot, last_time), READONLY, "CLOCK_MONOTONIC time of last_seq"},
    {"members", T_INT, offsetof(Slot, members), READONLY, "FanOuts that hold this slot"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject SlotType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sfu._fastpath.Slot",
    .tp_basicsize = sizeof(Slot),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One consumer's steady forwarding state (see sfu/_fastpath.c).",
    .tp_new = slot_new,
    .tp_dealloc = (destructor)slot_dealloc,
    .tp_methods = slot_methods,
    .tp_members = slot_members,
};

/* ---- FanOut ---------------------------------------------------------------------------------- */

static PyObject *
fanout_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)kwds;
    unsigned long long fn, fn_rtcp = 0;
    if (!PyArg_ParseTuple(args, "K|K:FanOut", &fn, &fn_rtcp))
        return NULL;
    if (fn == 0) {
        PyErr_SetString(PyExc_ValueError, "srtp_protect address is 0");
        return NULL;
    }
    FanOut *self = (FanOut *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->protect = (srtp_protect_fn)(uintptr_t)fn;
    self->protect_rtcp = (srtp_protect_fn)(uintptr_t)fn_rtcp;
    return (PyObject *)self;
}

static void
fanout_clear_slots(FanOut *self)
{
    Py_ssize_t n = self->size;
    self->size = 0; /* before any DECREF can run a finalizer */
    for (Py_ssize_t i = 0; i < n; i++) {
        self->slots[i]->members--;
        Py_DECREF(self->slots[i]);
    }
}

static void
fanout_dealloc(FanOut *self)
{
    fanout_clear_slots(self);
    PyMem_Free(self->slots);
    PyMem_Free(self->arena);
    PyMem_Free(self->msgs);
    PyMem_Free(self->iov);
    PyMem_Free(self->ok);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
fanout_add(FanOut *self, PyObject *arg)
{
    if (!PyObject_TypeCheck(arg, &SlotType)) {
        PyErr_SetString(PyExc_TypeError, "add() takes a Slot");
        return NULL;
    }
    Slot *slot = (Slot *)arg;
    for (Py_ssize_t i = 0; i < self->size; i++)
        if (self->slots[i] == slot)
            Py_RETURN_NONE;
    if (slot->fd < 0) {
        PyErr_SetString(PyExc_ValueError, "the slot is not configured");
        return NULL;
    }
    if (self->size == self->capacity) {
        Py_ssize_t cap = self->capacity ? self->capacity * 2 : 16;
        Slot **slots = PyMem_Realloc(self->slots, (size_t)cap * sizeof(Slot *));
        if (slots == NULL)
            return PyErr_NoMemory();
        self->slots = slots;
        self->capacity = cap;
    }
    Py_INCREF(slot);
    slot->members++;
    self->slots[self->size++] = slot;
    Py_RETURN_NONE;
}

static PyObject *
fanout_remove(FanOut *self, PyObject *arg)
{
    for (Py_ssize_t i = 0; i < self->size; i++) {
        if ((PyObject *)self->slots[i] == arg) {
            Slot *slot = self->slots[i];
            self->slots[i] = self->slots[--self->size]; /* order does not matter */
            slot->members--;
            Py_DECREF(slot);
            break;
        }
    }
    Py_RETURN_NONE;
}

static PyObject *
fanout_clear(FanOut *self, PyObject *unused)
{
    (void)unused;
    fanout_clear_slots(self);
    Py_RETURN_NONE;
}

static PyObject *
fanout_take_errors(FanOut *self, PyObject *unused)
{
    (void)unused;
    PyObject *r = Py_BuildValue("(KK)", self->srtp_errors, self->send_errors);
    if (r != NULL)
        self->srtp_errors = self->send_errors = 0;
    return r;
}

static Py_ssize_t
fanout_len(FanOut *self)
{
    return self->size;
}

static int
fanout_reserve(FanOut *self, size_t n, size_t stride)
{
    if (n * stride > self->arena_size) {
        unsigned char *arena = PyMem_Realloc(self->arena, n * stride);
        if (arena == NULL)
            return -1;
        self->arena = arena;
        self->arena_size = n * stride;
    }
    if (n > self->io_capacity) {
        struct mmsghdr *msgs = PyMem_Realloc(self->msgs, n * sizeof(struct mmsghdr));
        if (msgs == NULL)
            return -1;
        self->msgs = msgs;
        struct iovec *iov = PyMem_Realloc(self->iov, n * sizeof(struct iovec));
        if (iov == NULL)
            return -1;
        self->iov = iov;
        unsigned char *ok = PyMem_Realloc(self->ok, n);
        if (ok == NULL)
            return -1;
        self->ok = ok;
        self->io_capacity = n;
    }
    return 0;
}

/* Add a consumer's VP8 PictureID and TL0PICIDX offsets to the payload descriptor at pos (RFC 7741
 * 4.2), as sfu.vp8_munger.Vp8Munger.rewrite does. */
static void
rewrite_vp8(unsigned char *buf, Py_ssize_t pos, Py_ssize_t end, uint16_t pid_off, unsigned char tl0_off)
{
    if (pos >= end || !(buf[pos] & 0x80))
        return;
    pos++;
    if (pos >= end)
        return;
    unsigned char x = buf[pos++];
    if (x & 0x80) {
        if (pos >= end)
            return;
        if (buf[pos] & 0x80) {
            if (pos + 1 >= end)
                return;
            uint16_t pid = (uint16_t)((((buf[pos] & 0x7F) << 8) | buf[pos + 1]) + pid_off) & 0x7FFF;
            buf[pos] = (unsigned char)(0x80 | (pid >> 8));
            buf[pos + 1] = (unsigned char)pid;
            pos += 2;
        } else {
            buf[pos] = (unsigned char)((buf[pos] + pid_off) & 0x7F);
            pos += 1;
        }
    }
    if ((x & 0x40) && pos < end)
        buf[pos] = (unsigned char)(buf[pos] + tl0_off);
}

/* Remap header-extension ids in place, as sfu.rtp.rewrite_extensions does. */
static void
rewrite_extensions(unsigned char *buf, unsigned int profile, Py_ssize_t pos, Py_ssize_t end,
                   const unsigned char *map)
{
    if (profile == 0xBEDE) {
        while (pos < end) {
            unsigned char b = buf[pos];
            if (b == 0) {
                pos++;
                continue;
            }
            unsigned char id = b >> 4;
            if (id == 15)
                break;
            Py_ssize_t nxt = pos + 2 + (b & 0x0F);
            if (nxt > end) {
                memset(buf + pos, 0, (size_t)(end - pos));
                return;
            }
            unsigned char to = map[id];
            if (to == 0 || to > 14)
                memset(buf + pos, 0, (size_t)(nxt - pos));
            else if (to != id)
                buf[pos] = (unsigned char)((to << 4) | (b & 0x0F));
            pos = nxt;
        }
    } else if ((profile & 0xFFF0) == 0x1000) {
        while (pos < end) {
            unsigned char b = buf[pos];
            if (b == 0) {
                pos++;
                continue;
            }
            if (pos + 2 > end) {
                memset(buf + pos, 0, (size_t)(end - pos));
                return;
            }
            Py_ssize_t nxt = pos + 2 + buf[pos + 1];
            if (nxt > end) {
                memset(buf + pos, 0, (size_t)(end - pos));
                return;
            }
            unsigned char to = map[b];
            if (to == 0)
                memset(buf + pos, 0, (size_t)(nxt - pos));
            else if (to != b)
                buf[pos] = to;
            pos = nxt;
        }
    }
}

/* Message ``k`` of the next sendmmsg: ``len`` bytes at ``buf`` to slot ``i``'s address. msg_len
 * holds the slot index until the kernel overwrites it with the bytes sent (see send_ready). */
static inline void
queue_message(FanOut *self, Py_ssize_t k, Py_ssize_t i, unsigned char *buf, int len)
{
    Slot *s = self->slots[i];
    self->iov[k].iov_base = buf;
    self->iov[k].iov_len = (size_t)len;
    struct msghdr *h = &self->msgs[k].msg_hdr;
    h->msg_name = (void *)PyBytes_AS_STRING(s->addr);
    h->msg_namelen = (socklen_t)PyBytes_GET_SIZE(s->addr);
    h->msg_iov = &self->iov[k];
    h->msg_iovlen = 1;
    h->msg_control = NULL;
    h->msg_controllen = 0;
    h->msg_flags = 0;
    self->msgs[k].msg_len = (unsigned int)i;
}

/* Waiting for room in full sockets, process-wide (the GIL serializes every caller). */
static double wait_window_start;
static long wait_window_ms;

/* How long a send may wait now: at most SEND_WAIT_MS for this call, and what is left of the
 * WAIT_SHARE_MS allowed per WAIT_WINDOW_MS. */
static int
wait_allowance(int call_budget)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    double now = (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
    if (now - wait_window_start >= WAIT_WINDOW_MS / 1000.0) {
        wait_window_start = now;
        wait_window_ms = 0;
    }
    long left = WAIT_SHARE_MS - wait_window_ms;
    if (left <= 0 || call_budget <= 0)
        return 0;
    return call_budget < left ? call_budget : (int)left;
}

/* Send msgs[0 .. ready) (msg_len holds each message's slot index) in runs of the same socket (one
 * run when every subscriber is on the shared port); marks ok[slot] for the ones sent. */
static long
send_ready(FanOut *self, Py_ssize_t ready, unsigned long long *bytes_out)
{
    /* send in runs of the same socket (one run when every subscriber is on the shared port) */
    Py_ssize_t i = 0;
    long sent = 0;
    unsigned long long bytes = 0;
    int wait_budget = SEND_WAIT_MS;
    while (i < ready) {
        int fd = self->slots[self->msgs[i].msg_len]->fd;
        Py_ssize_t run_end = i + 1;
        while (run_end < ready && self->slots[self->msgs[run_end].msg_len]->fd == fd)
            run_end++;
        while (i < run_end) {
            unsigned int count = (unsigned int)(run_end - i < CHUNK ? run_end - i : CHUNK);
            /* remember which slots these are: msg_len is overwritten by the kernel */
            Py_ssize_t first = i;
            unsigned int idx[CHUNK];
            for (unsigned int k = 0; k < count; k++)
                idx[k] = self->msgs[first + k].msg_len;
            int r = sendmmsg(fd, &self->msgs[first], count, 0);
            if (r < 0 && errno == EINTR) {
                for (unsigned int k = 0; k < count; k++)
                    self->msgs[first + k].msg_len = idx[k];
                continue;
            }
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                /* the socket's send buffer is full (a real NIC frees it as its queue drains):
                 * wait for room, at most SEND_WAIT_MS per call in all; then the rest of this
                 * run is dropped (real-time media) */
                for (unsigned int k = 0; k < count; k++)
                    self->msgs[first + k].msg_len = idx[k];
                struct pollfd pfd = {.fd = fd, .events = POLLOUT, .revents = 0};
                int allowed = wait_allowance(wait_budget);
                if (allowed > 0) {
                    struct timespec t0, t1;
                    clock_gettime(CLOCK_MONOTONIC, &t0);
                    int p = poll(&pfd, 1, allowed);
                    clock_gettime(CLOCK_MONOTONIC, &t1);
                    long spent = (t1.tv_sec - t0.tv_sec) * 1000L + (t1.tv_nsec - t0.tv_nsec) / 1000000L;
                    if (spent < 1)
                        spent = 1;
                    wait_budget -= (int)spent;
                    wait_window_ms += spent;
                    self->send_waits++;
                    if (p > 0 && (pfd.revents & POLLOUT))
                        continue;
                }
                self->send_errors += (unsigned long long)(run_end - i);
                i = run_end;
                break;
            }
            unsigned int done = r > 0 ? (unsigned int)r : 0;
            for (unsigned int k = 0; k < done; k++) {
                self->ok[idx[k]] = 1;
                bytes += self->iov[first + k].iov_len;
            }
            sent += done;
            i = first + done;
            for (unsigned int k = done; k < count; k++) /* restore the slot indexes not sent */
                self->msgs[first + k].msg_len = idx[k];
            if (r <= 0) { /* the first message of this call failed: drop it, go on */
                self->send_errors++;
                i++;
            }
        }
    }
    *bytes_out = bytes;
    return sent;
}

static PyObject *
fanout_forward(FanOut *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "forward(data, seq, ts, ext_profile, ext_start, ext_end)");
        return NULL;
    }
    PyObject *data = args[0];
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "data must be bytes");
        return NULL;
    }
    unsigned long seq = PyLong_AsUnsignedLong(args[1]);
    unsigned long ts = PyLong_AsUnsignedLong(args[2]);
    long profile = PyLong_AsLong(args[3]);
    Py_ssize_t ext_start = PyLong_AsSsize_t(args[4]);
    Py_ssize_t ext_end = PyLong_AsSsize_t(args[5]);
    if (PyErr_Occurred())
        return NULL;
    const unsigned char *src = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t len = PyBytes_GET_SIZE(data);
    self->last_bytes = 0;
    if (len < 12 || ext_start < 12 || ext_end < ext_start || ext_end > len) {
        PyErr_SetString(PyExc_ValueError, "not a checked RTP packet");
        return NULL;
    }
    Py_ssize_t n = self->size;
    if (n == 0)
        return PyLong_FromLong(0);
    if (len > MAX_PACKET) { /* longer than any MTU: dropped for every slot, as on the Python path */
        self->srtp_errors += (unsigned long long)n;
        return PyLong_FromLong(0);
    }
    size_t stride = ((size_t)len + SRTP_TRAILER + 15) & ~(size_t)15;
    if (fanout_reserve(self, (size_t)n, stride) < 0)
        return PyErr_NoMemory();

    uint16_t seq16 = (uint16_t)seq;
    uint32_t ts32 = (uint32_t)ts;
    Py_ssize_t ready = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Slot *s = self->slots[i];
        unsigned char *buf = self->arena + (size_t)i * stride;
        memcpy(buf, src, (size_t)len);
        buf[1] = (unsigned char)((buf[1] & 0x80) | s->pt);
        uint16_t out_seq = (uint16_t)(seq16 + s->seq_off);
        uint32_t out_ts = ts32 + s->ts_off;
        buf[2] = (unsigned char)(out_seq >> 8);
        buf[3] = (unsigned char)out_seq;
        buf[4] = (unsigned char)(out_ts >> 24);
        buf[5] = (unsigned char)(out_ts >> 16);
        buf[6] = (unsigned char)(out_ts >> 8);
        buf[7] = (unsigned char)out_ts;
        buf[8] = (unsigned char)(s->ssrc >> 24);
        buf[9] = (unsigned char)(s->ssrc >> 16);
        buf[10] = (unsigned char)(s->ssrc >> 8);
        buf[11] = (unsigned char)s->ssrc;
        if (profile && s->has_map)
            rewrite_extensions(buf, (unsigned int)profile, ext_start, ext_end, s->id_map);
        if (s->pid_off | s->tl0_off)
            rewrite_vp8(buf, ext_end, len, s->pid_off, s->tl0_off);
        int out_len = (int)len;
        self->ok[i] = 0;
        if (self->protect(s->srtp, buf, &out_len) != 0) {
            self->srtp_errors++;
            continue;
        }
        queue_message(self, ready++, i, buf, out_len);
    }

    unsigned long long bytes = 0;
    long sent = send_ready(self, ready, &bytes);
    self->last_bytes = bytes;

    if (sent) {
        struct timespec now_ts;
        clock_gettime(CLOCK_MONOTONIC, &now_ts);
        double now = (double)now_ts.tv_sec + (double)now_ts.tv_nsec * 1e-9;
        unsigned long long payload = (unsigned long long)(len - ext_end);
        for (Py_ssize_t k = 0; k < n; k++) {
            if (!self->ok[k])
                continue;
            Slot *s = self->slots[k];
            uint16_t out_seq = (uint16_t)(seq16 + s->seq_off);
            if (s->last_seq < 0 || (out_seq != (uint16_t)s->last_seq &&
                                    (uint16_t)(out_seq - (uint16_t)s->last_seq) < 0x8000)) {
                s->last_seq = out_seq;
                s->last_ts = ts32 + s->ts_off;
                s->last_time = now;
            }
            s->packets++;
            s->octets += payload;
        }
    }
    return PyLong_FromLong(sent);
}


static PyObject *
fanout_sender_report(FanOut *self, PyObject *args)
{
    unsigned long long ntp, rtp_ts;
    if (!PyArg_ParseTuple(args, "KK:sender_report", &ntp, &rtp_ts))
        return NULL;
    if (self->protect_rtcp == NULL) {
        PyErr_SetString(PyExc_ValueError, "this FanOut has no srtp_protect_rtcp");
        return NULL;
    }
    Py_ssize_t n = self->size;
    if (n == 0)
        return PyLong_FromLong(0);
    size_t stride = 32 + SRTP_TRAILER + 16; /* 28-byte SR + the SRTCP index and tag */
    if (fanout_reserve(self, (size_t)n, stride) < 0)
        return PyErr_NoMemory();
    Py_ssize_t ready = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Slot *s = self->slots[i];
        self->ok[i] = 0;
        if (s->last_seq < 0)
            continue; /* nothing sent yet: no report */
        unsigned char *b = self->arena + (size_t)i * stride;
        uint32_t ts = (uint32_t)rtp_ts + s->ts_off;
        uint32_t pk = (uint32_t)(s->base_packets + s->packets);
        uint32_t oc = (uint32_t)(s->base_octets + s->octets);
        b[0] = 0x80;
        b[1] = 200;
        b[2] = 0;
        b[3] = 6;
        for (int k = 0; k < 4; k++) {
            b[4 + k] = (unsigned char)(s->ssrc >> (24 - 8 * k));
            b[16 + k] = (unsigned char)(ts >> (24 - 8 * k));
            b[20 + k] = (unsigned char)(pk >> (24 - 8 * k));
            b[24 + k] = (unsigned char)(oc >> (24 - 8 * k));
        }
        for (int k = 0; k < 8; k++)
            b[8 + k] = (unsigned char)(ntp >> (56 - 8 * k));
        int out_len = 28;
        if (self->protect_rtcp(s->srtp, b, &out_len) != 0)
            continue;
        queue_message(self, ready++, i, b, out_len);
    }
    unsigned long long bytes = 0, srtp_errors = self->srtp_errors, send_errors = self->send_errors;
    long sent = send_ready(self, ready, &bytes);
    self->srtp_errors = srtp_errors; /* take_errors() counts RTP packets only */
    self->send_errors = send_errors;
    return PyLong_FromLong(sent);
}

static PyMethodDef fanout_methods[] = {
    {"add", (PyCFunction)fanout_add, METH_O, "add(slot): forward to this slot too (idempotent)"},
    {"remove", (PyCFunction)fanout_remove, METH_O, "remove(slot): stop forwarding to it (idempotent)"},
    {"clear", (PyCFunction)fanout_clear, METH_NOARGS, "remove every slot"},
    {"take_errors", (PyCFunction)fanout_take_errors, METH_NOARGS,
     "take_errors() -> (srtp, send): packets that failed since the last call"},
    {"forward", (PyCFunction)(void (*)(void))fanout_forward, METH_FASTCALL,
     "forward(data, seq, ts, ext_profile, ext_start, ext_end) -> packets sent"},
    {"sender_report", (PyCFunction)fanout_sender_report, METH_VARARGS,
     "sender_report(ntp, rtp_ts) -> reports sent: the publisher's SR translated for every slot"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef fanout_members[] = {
    {"last_bytes", T_ULONGLONG, offsetof(FanOut, last_bytes), READONLY, "bytes sent by the last forward()"},
    {"send_waits", T_ULONGLONG, offsetof(FanOut, send_waits), READONLY,
     "times a send found the socket full and waited (at most 5 ms per call) for room"},
    {NULL, 0, 0, 0, NULL},
};

static PySequenceMethods fanout_as_sequence = {
    .sq_length = (lenfunc)fanout_len,
};

static PyTypeObject FanOutType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sfu._fastpath.FanOut",
    .tp_basicsize = sizeof(FanOut),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The slots fed by one stream; forward() sends one packet to all (see sfu/_fastpath.c).",
    .tp_new = fanout_new,
    .tp_dealloc = (destructor)fanout_dealloc,
    .tp_methods = fanout_methods,
    .tp_members = fanout_members,
    .tp_as_sequence = &fanout_as_sequence,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "sfu._fastpath", "The compiled fan-out of sfu's forwarding core", -1, NULL,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__fastpath(void)
{
    if (PyType_Ready(&SlotType) < 0 || PyType_Ready(&FanOutType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&SlotType);
    if (PyModule_AddObject(m, "Slot", (PyObject *)&SlotType) < 0) {
        Py_DECREF(&SlotType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&FanOutType);
    if (PyModule_AddObject(m, "FanOut", (PyObject *)&FanOutType) < 0) {
        Py_DECREF(&FanOutType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

#else /* not Linux: the module does not import, and the pure-Python path is used */

PyMODINIT_FUNC
PyInit__fastpath(void)
{
    PyErr_SetString(PyExc_ImportError, "sfu._fastpath needs Linux (sendmmsg)");
    return NULL;
}

#endif
