/*
 * A simulated V4L2 camera for the test suite: a library preloaded (LD_PRELOAD) in front of libc
 * that answers the V4L2 ioctls, mmap and poll for one device path, so that labthings' V4L2
 * camera Thing can be tested on a machine with no camera, unmodified.
 *
 * Environment:
 *   FAKECAM_DEVICE  the device path to answer for. It must exist as a file: removing it is an
 *                   unplug (open fails, a streaming device reports an error), creating it again
 *                   a replug (the controls go back to their defaults, as on a real camera).
 *   FAKECAM_FRAMES  a folder of JPEG files 0.jpg, 1.jpg, ... served in turn in MJPG mode.
 *   FAKECAM_STATE   a file rewritten after every change: the controls' values on the device,
 *                   whether it streams, and how many frames it has delivered.
 *
 * The device: formats MJPG (640x480 at 30 or 15 fps, 320x240 at 30), YUYV (320x240 at 15: a
 * horizontal grey ramp, Y = 255 * x / (width - 1)) and H264 (listed, not served by labthings).
 * Controls: a class heading, Brightness (0-255, default 128), Contrast (0-100 step 5, default
 * 50), "White Balance, Automatic" (boolean, default on), "Auto Exposure" (menu: 1 Manual Mode,
 * 3 Aperture Priority Mode; default 3), "Exposure Time, Absolute" (3-2047, default 250; EACCES
 * unless Auto Exposure is manual, as UVC cameras do) and a button (not a property).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>

#define MAX_FDS 16
#define MAX_BUFFERS 8
#define BUFFER_SIZE (640 * 480 * 2 + 65536)
#define OFFSET_STEP (16 << 20)

/* Recursive: fopen and fclose, called with it held, come back through open and close here. */
static pthread_mutex_t lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

struct control {
    __u32 id;
    __u32 type;
    const char *name;
    __s32 minimum, maximum, step, default_value;
    __s32 value;
};

static struct control controls[] = {
    {V4L2_CID_USER_CLASS, V4L2_CTRL_TYPE_CTRL_CLASS, "User Controls", 0, 0, 0, 0, 0},
    {V4L2_CID_BRIGHTNESS, V4L2_CTRL_TYPE_INTEGER, "Brightness", 0, 255, 1, 128, 128},
    {V4L2_CID_CONTRAST, V4L2_CTRL_TYPE_INTEGER, "Contrast", 0, 100, 5, 50, 50},
    {V4L2_CID_AUTO_WHITE_BALANCE, V4L2_CTRL_TYPE_BOOLEAN, "White Balance, Automatic", 0, 1, 1, 1, 1},
    {V4L2_CID_DO_WHITE_BALANCE, V4L2_CTRL_TYPE_BUTTON, "Do White Balance", 0, 0, 0, 0, 0},
    {V4L2_CID_EXPOSURE_AUTO, V4L2_CTRL_TYPE_MENU, "Auto Exposure", 0, 3, 1, 3, 3},
    {V4L2_CID_EXPOSURE_ABSOLUTE, V4L2_CTRL_TYPE_INTEGER, "Exposure Time, Absolute", 3, 2047, 1, 250, 250},
};
#define N_CONTROLS (sizeof(controls) / sizeof(controls[0]))

struct mode { __u32 fourcc, width, height, fps; };
static const struct mode modes[] = {
    {V4L2_PIX_FMT_MJPEG, 640, 480, 30}, {V4L2_PIX_FMT_MJPEG, 640, 480, 15},
    {V4L2_PIX_FMT_MJPEG, 320, 240, 30}, {V4L2_PIX_FMT_YUYV, 320, 240, 15},
    {V4L2_PIX_FMT_H264, 640, 480, 30},
};
#define N_MODES (sizeof(modes) / sizeof(modes[0]))
static const __u32 formats[] = {V4L2_PIX_FMT_MJPEG, V4L2_PIX_FMT_YUYV, V4L2_PIX_FMT_H264};

/* The device's state, shared by every open file. */
static __u32 cur_fourcc = V4L2_PIX_FMT_MJPEG, cur_width = 640, cur_height = 480, cur_fps = 30;
static int streaming = 0;
static unsigned long frames_served = 0;
static int was_unplugged = 0;

struct buffer { void *ptr; int queued; };
struct fake { int fd; int nbuffers; struct buffer buffers[MAX_BUFFERS]; struct timespec next; __u32 sequence; };
static struct fake fakes[MAX_FDS];

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_poll)(struct pollfd *, nfds_t, int);

static void init(void) {
    if (real_open) return;
    real_open = dlsym(RTLD_NEXT, "open");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_close = dlsym(RTLD_NEXT, "close");
    real_ioctl = dlsym(RTLD_NEXT, "ioctl");
    real_mmap = dlsym(RTLD_NEXT, "mmap");
    real_poll = dlsym(RTLD_NEXT, "poll");
}

static const char *device(void) { return getenv("FAKECAM_DEVICE"); }
static int present(void) { const char *d = device(); return d && access(d, F_OK) == 0; }

static struct fake *find(int fd) {
    for (int i = 0; i < MAX_FDS; i++)
        if (fakes[i].fd == fd && fd > 0) return &fakes[i];
    return NULL;
}

static void write_state(void) {
    const char *path = getenv("FAKECAM_STATE");
    if (!path) return;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    for (size_t i = 0; i < N_CONTROLS; i++)
        if (controls[i].type != V4L2_CTRL_TYPE_CTRL_CLASS && controls[i].type != V4L2_CTRL_TYPE_BUTTON)
            fprintf(f, "control %s=%d\n", controls[i].name, controls[i].value);
    fprintf(f, "streaming=%d\nframes_served=%lu\nformat=%.4s %ux%u %u\n", streaming, frames_served,
            (char *)&cur_fourcc, cur_width, cur_height, cur_fps);
    fclose(f);
    rename(tmp, path);
}

static int open_fake(const char *path, int flags, int (*opener)(void)) {
    (void)flags;
    pthread_mutex_lock(&lock);
    if (!present()) {
        was_unplugged = 1;
        pthread_mutex_unlock(&lock);
        errno = ENOENT;
        return -1;
    }
    if (was_unplugged) {
        /* A camera plugged back starts from its defaults. */
        was_unplugged = 0;
        for (size_t i = 0; i < N_CONTROLS; i++) controls[i].value = controls[i].default_value;
        streaming = 0;
    }
    write_state();
    int fd = opener();
    for (int i = 0; fd >= 0 && i < MAX_FDS; i++) {
        if (fakes[i].fd == 0) {
            memset(&fakes[i], 0, sizeof fakes[i]);
            fakes[i].fd = fd;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    (void)path;
    return fd;
}

static int open_devnull(void) { return real_open("/dev/null", O_RDWR); }

#define OPEN_WRAPPER(name, real)                                                   \
    int name(const char *path, int flags, ...) {                                 \
        init();                                                                  \
        mode_t mode = 0;                                                         \
        if (flags & (O_CREAT | O_TMPFILE)) {                                     \
            va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); \
        }                                                                        \
        if (device() && strcmp(path, device()) == 0) {                           \
            return open_fake(path, flags, open_devnull);                         \
        }                                                                        \
        return real(path, flags, mode);                                          \
    }
OPEN_WRAPPER(open, real_open)
OPEN_WRAPPER(open64, real_open64)

static int openat_any(int dirfd, const char *path, int flags, mode_t mode) {
    if (device() && strcmp(path, device()) == 0) return open_fake(path, flags, open_devnull);
    return real_openat(dirfd, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
    init();
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }
    return openat_any(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
    init();
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }
    return openat_any(dirfd, path, flags, mode);
}

int close(int fd) {
    init();
    pthread_mutex_lock(&lock);
    struct fake *f = find(fd);
    if (f) {
        if (f->nbuffers) { streaming = 0; write_state(); }
        f->fd = 0;
    }
    pthread_mutex_unlock(&lock);
    return real_close(fd);
}

static struct control *control(__u32 id) {
    for (size_t i = 0; i < N_CONTROLS; i++) if (controls[i].id == id) return &controls[i];
    return NULL;
}

static int mode_exists(__u32 fourcc, __u32 w, __u32 h) {
    for (size_t i = 0; i < N_MODES; i++)
        if (modes[i].fourcc == fourcc && modes[i].width == w && modes[i].height == h) return 1;
    return 0;
}

static void fill_format(struct v4l2_pix_format *pix) {
    pix->pixelformat = cur_fourcc;
    pix->width = cur_width;
    pix->height = cur_height;
    pix->field = V4L2_FIELD_NONE;
    pix->bytesperline = cur_fourcc == V4L2_PIX_FMT_YUYV ? cur_width * 2 : 0;
    pix->sizeimage = cur_width * cur_height * 2;
    pix->colorspace = V4L2_COLORSPACE_SRGB;
}

static void add_ns(struct timespec *t, long ns) {
    t->tv_nsec += ns;
    while (t->tv_nsec >= 1000000000L) { t->tv_nsec -= 1000000000L; t->tv_sec++; }
}

/* Sleeps until the fake's next frame is due, or at most `limit_ms` (-1: no limit); returns
 * whether it is due. */
static int wait_frame(struct fake *f, int limit_ms) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long due = (f->next.tv_sec - now.tv_sec) * 1000000000LL + (f->next.tv_nsec - now.tv_nsec);
    if (due <= 0) return 1;
    if (limit_ms >= 0 && due > limit_ms * 1000000LL) {
        struct timespec pause = {limit_ms / 1000, (limit_ms % 1000) * 1000000L};
        nanosleep(&pause, NULL);
        return 0;
    }
    struct timespec pause = {due / 1000000000LL, due % 1000000000LL};
    nanosleep(&pause, NULL);
    return 1;
}

static size_t fill_frame(void *ptr) {
    if (cur_fourcc == V4L2_PIX_FMT_YUYV) {
        unsigned char *p = ptr;
        for (__u32 y = 0; y < cur_height; y++)
            for (__u32 x = 0; x < cur_width; x += 2) {
                unsigned char *q = p + (y * cur_width + x) * 2;
                q[0] = (unsigned char)(255 * x / (cur_width - 1));
                q[1] = 128;
                q[2] = (unsigned char)(255 * (x + 1) / (cur_width - 1));
                q[3] = 128;
            }
        return cur_width * cur_height * 2;
    }
    static long count = -1;
    const char *dir = getenv("FAKECAM_FRAMES");
    char path[4096];
    if (!dir) return 0;
    if (count < 0) {
        for (count = 0;; count++) {
            snprintf(path, sizeof path, "%s/%ld.jpg", dir, count);
            if (access(path, R_OK) != 0) break;
        }
    }
    if (count == 0) return 0;
    snprintf(path, sizeof path, "%s/%lu.jpg", dir, frames_served % (unsigned long)count);
    FILE *file = fopen(path, "rb");
    if (!file) return 0;
    size_t n = fread(ptr, 1, BUFFER_SIZE, file);
    fclose(file);
    return n;
}

static int do_ioctl(struct fake *f, unsigned long request, void *arg) {
    switch (request) {
    case VIDIOC_QUERYCAP: {
        struct v4l2_capability *cap = arg;
        memset(cap, 0, sizeof *cap);
        strcpy((char *)cap->driver, "fakecam");
        strcpy((char *)cap->card, "LabThings test camera");
        strcpy((char *)cap->bus_info, "fake:0");
        cap->version = 0x60100;
        cap->device_caps = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING;
        cap->capabilities = cap->device_caps | V4L2_CAP_DEVICE_CAPS;
        return 0;
    }
    case VIDIOC_ENUM_FMT: {
        struct v4l2_fmtdesc *d = arg;
        if (d->type != V4L2_BUF_TYPE_VIDEO_CAPTURE || d->index >= 3) return EINVAL;
        __u32 index = d->index, type = d->type;
        memset(d, 0, sizeof *d);
        d->index = index; d->type = type;
        d->pixelformat = formats[index];
        d->flags = index == 1 ? 0 : V4L2_FMT_FLAG_COMPRESSED;
        snprintf((char *)d->description, sizeof d->description, "%.4s", (char *)&formats[index]);
        return 0;
    }
    case VIDIOC_ENUM_FRAMESIZES: {
        struct v4l2_frmsizeenum *s = arg;
        __u32 seen = 0, lw = 0, lh = 0;
        for (size_t i = 0; i < N_MODES; i++) {
            if (modes[i].fourcc != s->pixel_format) continue;
            if (modes[i].width == lw && modes[i].height == lh) continue;
            lw = modes[i].width; lh = modes[i].height;
            if (seen++ == s->index) {
                s->type = V4L2_FRMSIZE_TYPE_DISCRETE;
                s->discrete.width = lw; s->discrete.height = lh;
                return 0;
            }
        }
        return EINVAL;
    }
    case VIDIOC_ENUM_FRAMEINTERVALS: {
        struct v4l2_frmivalenum *v = arg;
        __u32 seen = 0;
        for (size_t i = 0; i < N_MODES; i++) {
            if (modes[i].fourcc != v->pixel_format || modes[i].width != v->width || modes[i].height != v->height) continue;
            if (seen++ == v->index) {
                v->type = V4L2_FRMIVAL_TYPE_DISCRETE;
                v->discrete.numerator = 1; v->discrete.denominator = modes[i].fps;
                return 0;
            }
        }
        return EINVAL;
    }
    case VIDIOC_G_FMT: {
        struct v4l2_format *fmt = arg;
        if (fmt->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return EINVAL;
        fill_format(&fmt->fmt.pix);
        return 0;
    }
    case VIDIOC_S_FMT:
    case VIDIOC_TRY_FMT: {
        struct v4l2_format *fmt = arg;
        if (fmt->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return EINVAL;
        if (streaming) return EBUSY;
        struct v4l2_pix_format *pix = &fmt->fmt.pix;
        __u32 fourcc = pix->pixelformat, w = pix->width, h = pix->height;
        if (!mode_exists(fourcc, w, h)) {
            /* Like a driver: the first size of the format, or the first mode. */
            size_t i = 0;
            while (i < N_MODES && modes[i].fourcc != fourcc) i++;
            if (i == N_MODES) i = 0;
            fourcc = modes[i].fourcc; w = modes[i].width; h = modes[i].height;
        }
        if (request == VIDIOC_S_FMT) {
            cur_fourcc = fourcc; cur_width = w; cur_height = h;
            for (size_t i = 0; i < N_MODES; i++)
                if (modes[i].fourcc == fourcc && modes[i].width == w && modes[i].height == h) { cur_fps = modes[i].fps; break; }
            write_state();
        }
        fill_format(pix);
        pix->pixelformat = fourcc; pix->width = w; pix->height = h;
        return 0;
    }
    case VIDIOC_G_PARM:
    case VIDIOC_S_PARM: {
        struct v4l2_streamparm *p = arg;
        if (p->type != V4L2_BUF_TYPE_VIDEO_CAPTURE) return EINVAL;
        if (request == VIDIOC_S_PARM && p->parm.capture.timeperframe.numerator) {
            __u32 wanted = (p->parm.capture.timeperframe.denominator + p->parm.capture.timeperframe.numerator / 2) /
                           p->parm.capture.timeperframe.numerator;
            for (size_t i = 0; i < N_MODES; i++)
                if (modes[i].fourcc == cur_fourcc && modes[i].width == cur_width && modes[i].height == cur_height && modes[i].fps == wanted)
                    cur_fps = wanted;
            write_state();
        }
        memset(&p->parm, 0, sizeof p->parm);
        p->parm.capture.capability = V4L2_CAP_TIMEPERFRAME;
        p->parm.capture.timeperframe.numerator = 1;
        p->parm.capture.timeperframe.denominator = cur_fps;
        return 0;
    }
    case VIDIOC_REQBUFS: {
        struct v4l2_requestbuffers *r = arg;
        if (r->memory != V4L2_MEMORY_MMAP) return EINVAL;
        if (streaming && r->count) return EBUSY;
        f->nbuffers = r->count > MAX_BUFFERS ? MAX_BUFFERS : r->count;
        r->count = f->nbuffers;
        for (int i = 0; i < MAX_BUFFERS; i++) f->buffers[i].queued = 0;
        return 0;
    }
    case VIDIOC_QUERYBUF:
    case VIDIOC_QBUF: {
        struct v4l2_buffer *b = arg;
        if (b->index >= (__u32)f->nbuffers) return EINVAL;
        if (request == VIDIOC_QBUF) f->buffers[b->index].queued = 1;
        b->length = BUFFER_SIZE;
        b->m.offset = b->index * OFFSET_STEP;
        b->flags = f->buffers[b->index].queued ? V4L2_BUF_FLAG_QUEUED : 0;
        return 0;
    }
    case VIDIOC_STREAMON:
        if (!f->nbuffers) return EINVAL;
        streaming = 1;
        clock_gettime(CLOCK_MONOTONIC, &f->next);
        write_state();
        return 0;
    case VIDIOC_STREAMOFF:
        streaming = 0;
        for (int i = 0; i < MAX_BUFFERS; i++) f->buffers[i].queued = 0;
        write_state();
        return 0;
    case VIDIOC_DQBUF: {
        struct v4l2_buffer *b = arg;
        if (!streaming) return EINVAL;
        int index = -1;
        for (int i = 0; i < f->nbuffers; i++) if (f->buffers[i].queued && f->buffers[i].ptr) { index = i; break; }
        if (index < 0) return EINVAL;
        pthread_mutex_unlock(&lock);
        wait_frame(f, -1);
        pthread_mutex_lock(&lock);
        if (!present()) { was_unplugged = 1; return ENODEV; }
        size_t used = fill_frame(f->buffers[index].ptr);
        f->buffers[index].queued = 0;
        add_ns(&f->next, 1000000000L / cur_fps);
        memset(b, 0, sizeof *b);
        b->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
        b->memory = V4L2_MEMORY_MMAP;
        b->index = index;
        b->bytesused = used;
        b->length = BUFFER_SIZE;
        b->field = V4L2_FIELD_NONE;
        b->sequence = f->sequence++;
        b->flags = V4L2_BUF_FLAG_DONE | V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC;
        frames_served++;
        if (frames_served % 10 == 0) write_state();
        return 0;
    }
    case VIDIOC_QUERYCTRL: {
        struct v4l2_queryctrl *q = arg;
        struct control *c = NULL;
        if (q->id & V4L2_CTRL_FLAG_NEXT_CTRL) {
            __u32 after = q->id & ~V4L2_CTRL_FLAG_NEXT_CTRL;
            for (size_t i = 0; i < N_CONTROLS; i++)
                if (controls[i].id > after && (!c || controls[i].id < c->id)) c = &controls[i];
        } else {
            c = control(q->id);
        }
        if (!c) return EINVAL;
        memset(q, 0, sizeof *q);
        q->id = c->id; q->type = c->type;
        snprintf((char *)q->name, sizeof q->name, "%s", c->name);
        q->minimum = c->minimum; q->maximum = c->maximum; q->step = c->step;
        q->default_value = c->default_value;
        return 0;
    }
    case VIDIOC_QUERYMENU: {
        struct v4l2_querymenu *m = arg;
        if (m->id != V4L2_CID_EXPOSURE_AUTO) return EINVAL;
        const char *name = m->index == 1 ? "Manual Mode" : m->index == 3 ? "Aperture Priority Mode" : NULL;
        if (!name) return EINVAL;
        snprintf((char *)m->name, sizeof m->name, "%s", name);
        return 0;
    }
    case VIDIOC_G_CTRL:
    case VIDIOC_S_CTRL: {
        struct v4l2_control *v = arg;
        struct control *c = control(v->id);
        if (!c || c->type == V4L2_CTRL_TYPE_CTRL_CLASS) return EINVAL;
        if (request == VIDIOC_G_CTRL) { v->value = c->value; return 0; }
        if (v->value < c->minimum || v->value > c->maximum) return ERANGE;
        if (c->type == V4L2_CTRL_TYPE_MENU && v->value != 1 && v->value != 3) return EINVAL;
        if (c->id == V4L2_CID_EXPOSURE_ABSOLUTE && control(V4L2_CID_EXPOSURE_AUTO)->value != V4L2_EXPOSURE_MANUAL)
            return EACCES;
        c->value = v->value;
        write_state();
        return 0;
    }
    default:
        return ENOTTY;
    }
}

int ioctl(int fd, unsigned long request, ...) {
    init();
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    pthread_mutex_lock(&lock);
    struct fake *f = find(fd);
    if (!f) {
        pthread_mutex_unlock(&lock);
        return real_ioctl(fd, request, arg);
    }
    int error = present() ? do_ioctl(f, request, arg) : ENODEV;
    pthread_mutex_unlock(&lock);
    if (error) { errno = error; return -1; }
    return 0;
}

static void *map(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
    pthread_mutex_lock(&lock);
    struct fake *f = find(fd);
    if (!f) {
        pthread_mutex_unlock(&lock);
        return real_mmap(addr, length, prot, flags, fd, offset);
    }
    int index = offset / OFFSET_STEP;
    if (index >= f->nbuffers || length > BUFFER_SIZE) {
        pthread_mutex_unlock(&lock);
        errno = EINVAL;
        return MAP_FAILED;
    }
    void *ptr = real_mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    f->buffers[index].ptr = ptr;
    pthread_mutex_unlock(&lock);
    return ptr;
}

void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
    init();
    return map(addr, length, prot, flags, fd, offset);
}

void *mmap64(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
    init();
    return map(addr, length, prot, flags, fd, offset);
}

int poll(struct pollfd *fds, nfds_t n, int timeout) {
    init();
    pthread_mutex_lock(&lock);
    struct fake *f = n == 1 ? find(fds[0].fd) : NULL;
    if (!f) {
        pthread_mutex_unlock(&lock);
        return real_poll(fds, n, timeout);
    }
    if (!present()) {
        pthread_mutex_unlock(&lock);
        fds[0].revents = POLLERR;
        return 1;
    }
    int ready = streaming;
    pthread_mutex_unlock(&lock);
    if (!ready) {
        /* Not streaming: nothing will come (a real device answers POLLERR). */
        fds[0].revents = POLLERR;
        return 1;
    }
    if (wait_frame(f, timeout)) {
        fds[0].revents = POLLIN | POLLRDNORM;
        return 1;
    }
    fds[0].revents = 0;
    return 0;
}
