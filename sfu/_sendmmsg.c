/* sfu._sendmmsg: many UDP datagrams in one sendmmsg(2) call (Linux).
 *
 *   sockaddr(host: str, port: int) -> bytes
 *       A packed struct sockaddr_in / sockaddr_in6 for a numeric IPv4 or IPv6 address (made once
 *       per destination and cached by the caller, so no address is parsed per packet).
 *
 *   send_batch(fd: int, packets: list, addrs: list, start: int = 0) -> int
 *       Sends packets[i] (bytes or bytearray) to addrs[i] (a sockaddr() result) for i >= start,
 *       in order, looping over sendmmsg until all are sent. Returns the index of the first packet
 *       NOT sent (len(packets) when all went): it stops early when the socket would block
 *       (EAGAIN) or when a packet fails after at least one packet of this call went; a packet
 *       that fails first raises OSError (the caller sends it on its own to get the per-packet
 *       error, and goes on from the next one). Bad arguments raise TypeError / ValueError before
 *       anything is sent.
 *
 * The GIL is held throughout: the socket is non-blocking, and holding it keeps the list items
 * (whose buffers the iovecs point into) alive and unchanged.
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
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#define HAVE_SENDMMSG 1
#endif

#define CHUNK 256 /* messages per sendmmsg call (UIO_MAXIOV is 1024) */

#ifdef HAVE_SENDMMSG

static PyObject *
py_sockaddr(PyObject *self, PyObject *args)
{
    const char *host;
    int port;
    (void)self;
    if (!PyArg_ParseTuple(args, "si:sockaddr", &host, &port))
        return NULL;
    if (port < 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "port must be 0..65535");
        return NULL;
    }
    if (strchr(host, ':') != NULL) {
        struct sockaddr_in6 sa6;
        char buf[INET6_ADDRSTRLEN + 1];
        const char *pct = strchr(host, '%'); /* a scope id: not for the media port */
        if (pct != NULL || strlen(host) > INET6_ADDRSTRLEN) {
            PyErr_Format(PyExc_ValueError, "not a numeric IPv6 address: %s", host);
            return NULL;
        }
        strcpy(buf, host);
        memset(&sa6, 0, sizeof(sa6));
        sa6.sin6_family = AF_INET6;
        sa6.sin6_port = htons((unsigned short)port);
        if (inet_pton(AF_INET6, buf, &sa6.sin6_addr) != 1) {
            PyErr_Format(PyExc_ValueError, "not a numeric IPv6 address: %s", host);
            return NULL;
        }
        return PyBytes_FromStringAndSize((const char *)&sa6, sizeof(sa6));
    } else {
        struct sockaddr_in sa4;
        memset(&sa4, 0, sizeof(sa4));
        sa4.sin_family = AF_INET;
        sa4.sin_port = htons((unsigned short)port);
        if (inet_pton(AF_INET, host, &sa4.sin_addr) != 1) {
            PyErr_Format(PyExc_ValueError, "not a numeric IPv4 address: %s", host);
            return NULL;
        }
        return PyBytes_FromStringAndSize((const char *)&sa4, sizeof(sa4));
    }
}

/* Fill msgs/iov for packets[i0 .. i0+count); 0 on success, -1 with an exception set. */
static int
fill(PyObject *packets, PyObject *addrs, Py_ssize_t i0, int count, struct mmsghdr *msgs, struct iovec *iov)
{
    for (int k = 0; k < count; k++) {
        PyObject *p = PyList_GET_ITEM(packets, i0 + k);
        PyObject *a = PyList_GET_ITEM(addrs, i0 + k);
        char *data;
        Py_ssize_t len;
        if (PyBytes_Check(p)) {
            data = PyBytes_AS_STRING(p);
            len = PyBytes_GET_SIZE(p);
        } else if (PyByteArray_Check(p)) {
            data = PyByteArray_AS_STRING(p);
            len = PyByteArray_GET_SIZE(p);
        } else {
            PyErr_Format(PyExc_TypeError, "packets[%zd] must be bytes or bytearray, not %.100s",
                         i0 + k, Py_TYPE(p)->tp_name);
            return -1;
        }
        if (!PyBytes_Check(a)) {
            PyErr_Format(PyExc_TypeError, "addrs[%zd] must be bytes from sockaddr(), not %.100s",
                         i0 + k, Py_TYPE(a)->tp_name);
            return -1;
        }
        Py_ssize_t alen = PyBytes_GET_SIZE(a);
        const struct sockaddr *sa = (const struct sockaddr *)PyBytes_AS_STRING(a);
        if (!((alen == (Py_ssize_t)sizeof(struct sockaddr_in) && sa->sa_family == AF_INET) ||
              (alen == (Py_ssize_t)sizeof(struct sockaddr_in6) && sa->sa_family == AF_INET6))) {
            PyErr_Format(PyExc_ValueError, "addrs[%zd] is not a sockaddr() result", i0 + k);
            return -1;
        }
        iov[k].iov_base = data;
        iov[k].iov_len = (size_t)len;
        memset(&msgs[k], 0, sizeof(msgs[k]));
        msgs[k].msg_hdr.msg_name = (void *)sa;
        msgs[k].msg_hdr.msg_namelen = (socklen_t)alen;
        msgs[k].msg_hdr.msg_iov = &iov[k];
        msgs[k].msg_hdr.msg_iovlen = 1;
    }
    return 0;
}

static PyObject *
py_send_batch(PyObject *self, PyObject *args)
{
    int fd;
    PyObject *packets, *addrs;
    Py_ssize_t start = 0;
    struct mmsghdr msgs[CHUNK];
    struct iovec iov[CHUNK];

    (void)self;
    if (!PyArg_ParseTuple(args, "iOO|n:send_batch", &fd, &packets, &addrs, &start))
        return NULL;
    if (!PyList_Check(packets) || !PyList_Check(addrs)) {
        PyErr_SetString(PyExc_TypeError, "packets and addrs must be lists");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(packets);
    if (PyList_GET_SIZE(addrs) != n) {
        PyErr_SetString(PyExc_ValueError, "packets and addrs differ in length");
        return NULL;
    }
    if (fd < 0) {
        PyErr_SetString(PyExc_ValueError, "bad file descriptor");
        return NULL;
    }
    if (start < 0 || start > n) {
        PyErr_SetString(PyExc_ValueError, "start out of range");
        return NULL;
    }
    /* check every item first: nothing is sent when an argument is bad */
    for (Py_ssize_t i = start; i < n; i += CHUNK) {
        int count = (int)(n - i < CHUNK ? n - i : CHUNK);
        if (fill(packets, addrs, i, count, msgs, iov) < 0)
            return NULL;
    }
    Py_ssize_t i = start;
    while (i < n) {
        int count = (int)(n - i < CHUNK ? n - i : CHUNK);
        if (n - start > CHUNK || i != start) /* the single-chunk case was filled above */
            (void)fill(packets, addrs, i, count, msgs, iov);
        int r = sendmmsg(fd, msgs, (unsigned int)count, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK || i > start)
                break;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (r == 0) /* not documented for datagram sockets; never spin */
            break;
        i += r;
        /* r < count: the next call starts at the packet that failed and reports its error */
    }
    return PyLong_FromSsize_t(i);
}

static PyMethodDef methods[] = {
    {"sockaddr", py_sockaddr, METH_VARARGS, "sockaddr(host, port) -> packed sockaddr_in/sockaddr_in6 bytes"},
    {"send_batch", py_send_batch, METH_VARARGS,
     "send_batch(fd, packets, addrs, start=0) -> index of the first packet not sent"},
    {NULL, NULL, 0, NULL},
};

#else /* no sendmmsg: the module does not import, and the pure-Python path is used */

static PyMethodDef methods[] = {{NULL, NULL, 0, NULL}};

#endif

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "sfu._sendmmsg", "sendmmsg(2) for the shared UDP port of sfu.udp_mux", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__sendmmsg(void)
{
#ifndef HAVE_SENDMMSG
    PyErr_SetString(PyExc_ImportError, "sendmmsg is not available on this platform");
    return NULL;
#else
    return PyModule_Create(&module);
#endif
}
